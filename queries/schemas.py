"""Kusto column types of the Log Analytics tables aoai-lens reads.

These are the columns that matter here (not every column Azure has), from the Azure Monitor table
references for AzureDiagnostics and AzureMetrics. The demo workspace is created from them, the Kusto
parser checks every catalogue query against them, and the local Log Analytics server types its answers
with them.
"""

from __future__ import annotations

AZURE_DIAGNOSTICS: dict[str, str] = {
    "TenantId": "string",
    "TimeGenerated": "datetime",
    "ResourceId": "string",
    "Category": "string",
    "ResourceGroup": "string",
    "SubscriptionId": "string",
    "ResourceProvider": "string",
    "Resource": "string",
    "ResourceType": "string",
    "OperationName": "string",
    "OperationVersion": "string",
    "ResultType": "string",
    "ResultSignature": "string",
    "ResultDescription": "string",
    "DurationMs": "long",
    "CallerIPAddress": "string",
    "CorrelationId": "string",
    "Level": "string",
    "properties_s": "string",
    "location_s": "string",
    "event_s": "string",
    "Tenant_s": "string",
    "SourceSystem": "string",
    "Type": "string",
    "_ResourceId": "string",
    "_SubscriptionId": "string",
    "_TimeReceived": "datetime",
    "_IsBillable": "string",
    "_BilledSize": "real",
}

AZURE_METRICS: dict[str, str] = {
    "TenantId": "string",
    "TimeGenerated": "datetime",
    "ResourceId": "string",
    "Resource": "string",
    "ResourceGroup": "string",
    "ResourceProvider": "string",
    "SubscriptionId": "string",
    "MetricName": "string",
    "Total": "real",
    "Count": "real",
    "Minimum": "real",
    "Maximum": "real",
    "Average": "real",
    "TimeGrain": "string",
    "UnitName": "string",
    "SourceSystem": "string",
    "Type": "string",
    "_ResourceId": "string",
    "_SubscriptionId": "string",
    "_TimeReceived": "datetime",
    "_IsBillable": "string",
    "_BilledSize": "real",
}

TABLES: dict[str, dict[str, str]] = {"AzureDiagnostics": AZURE_DIAGNOSTICS, "AzureMetrics": AZURE_METRICS}

# Kusto type -> DuckDB type used by the embedded workspace (datetimes are stored as naive UTC).
DUCKDB_TYPES = {
    "string": "VARCHAR",
    "datetime": "TIMESTAMP",
    "long": "BIGINT",
    "int": "INTEGER",
    "real": "DOUBLE",
    "bool": "BOOLEAN",
    "dynamic": "JSON",
    "guid": "UUID",
    "timespan": "INTERVAL",
}


def create_table_sql(name: str) -> str:
    cols = ", ".join(f'"{c}" {DUCKDB_TYPES[t]}' for c, t in TABLES[name].items())
    return f'CREATE TABLE "{name}" ({cols})'


# RequestResponse records carry `requestTime` / `responseTime` in properties as .NET ticks (100 ns since
# 0001-01-01); this is 1970-01-01T00:00:00Z in those ticks.
DOTNET_EPOCH_TICKS = 621_355_968_000_000_000
