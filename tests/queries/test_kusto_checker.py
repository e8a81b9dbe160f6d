"""Microsoft's Kusto parser and binder, run by Node through tests/kusto.py, catches what Log Analytics would."""

from __future__ import annotations

from pathlib import Path

import pytest
from kusto import Diagnostic, KustoCheckerUnavailable, check_kql, format_diagnostics, node_executable

from queries.schemas import TABLES

try:
    node_executable()
except KustoCheckerUnavailable as exc:  # pragma: no cover - depends on the machine
    pytest.skip(str(exc), allow_module_level=True)

GOOD = {
    "requests_by_status": """
AzureDiagnostics
| where TimeGenerated > ago(1d) and Category == "RequestResponse"
| extend p = parse_json(properties_s)
| extend deployment = tostring(p.modelDeploymentName), stream = tostring(p.streamType)
| summarize requests = count(), throttled = countif(toint(ResultSignature) == 429),
            errors = countif(toint(ResultSignature) >= 500)
    by deployment, bin(TimeGenerated, 1h)
| order by TimeGenerated asc
""",
    "latency_percentiles": """
AzureDiagnostics
| where Category == "RequestResponse" and ResultSignature == "200"
| extend deployment = tostring(parse_json(properties_s).modelDeploymentName)
| summarize p50 = percentile(DurationMs, 50), p95 = percentile(DurationMs, 95), p99 = percentile(DurationMs, 99)
    by deployment
""",
    "tokens_join": """
let usage = AzureDiagnostics
    | where Category == "AzureOpenAIRequestUsage"
    | extend u = parse_json(properties_s)
    | project CorrelationId, prompt = tolong(u.promptTokens[0]), completion = tolong(u.generatedTokens[0]);
AzureDiagnostics
| where Category == "RequestResponse"
| extend caller = tostring(parse_json(properties_s).objectId)
| join kind=inner usage on CorrelationId
| summarize prompt = sum(prompt), completion = sum(completion) by caller, CallerIPAddress
""",
    "parameters": """
let _start = datetime(2026-01-01T00:00:00Z);
let _end = datetime(2026-01-08T00:00:00Z);
let _deployments = dynamic(['gpt-4o-prod', 'o''brien']);
let _caller = @'x'' or 1==1 or ''';
AzureDiagnostics
| where TimeGenerated between (_start .. _end)
| extend deployment = tostring(parse_json(properties_s).modelDeploymentName)
| where deployment in (_deployments) or CallerIPAddress == _caller
| summarize n = count() by deployment
""",
    "metrics": """
AzureMetrics
| where MetricName in ("ProcessedPromptTokens", "GeneratedTokens")
| summarize tokens = sum(Total) by MetricName, bin(TimeGenerated, 5m)
""",
}


def test_correct_queries_have_no_errors(checked: dict[str, list[Diagnostic]]) -> None:
    for name, text in GOOD.items():
        errors = [d for d in checked[name] if d.is_error]
        assert errors == [], format_diagnostics(name, text, errors)


BROKEN = {
    "unknown_column": ("AzureDiagnostics | where NoSuchColumn == 1", "KS142", "NoSuchColumn"),
    "column_dropped_by_summarize": (
        "AzureDiagnostics | summarize n = count() by Category | where DurationMs > 1",
        "KS142",
        "DurationMs",
    ),
    "unknown_function": ("AzureDiagnostics | extend x = no_such_fn(DurationMs)", "KS211", "no_such_fn"),
    "unknown_table": ("AzureDiagnosticz | take 1", "KS204", "AzureDiagnosticz"),
    "string_plus_long": ("AzureDiagnostics | extend x = ResultSignature + DurationMs", "KS106", "+"),
    "reserved_word": ("AzureDiagnostics | summarize last = max(TimeGenerated)", "KS228", None),
}


SYNTAX_ERROR = "AzureDiagnostics | where | summarize count("
MANY = {f"q{i}": f"AzureDiagnostics | take {i}" for i in range(20)}


@pytest.fixture(scope="module")
def checked() -> dict[str, list[Diagnostic]]:
    """Every query of this module in one Node process (loading Kusto.Language costs about a second)."""
    queries = dict(GOOD)
    queries.update({name: text for name, (text, _, _) in BROKEN.items()})
    queries["syntax_error"] = SYNTAX_ERROR
    queries.update(MANY)
    return check_kql(queries, TABLES, errors_only=False)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_query_is_caught_with_its_code(name: str, checked: dict[str, list[Diagnostic]]) -> None:
    text, code, span = BROKEN[name]
    diags = checked[name]
    assert code in [d.code for d in diags], format_diagnostics(name, text, diags)
    if span is not None:
        d = next(d for d in diags if d.code == code)
        assert text[d.start : d.start + d.length] == span


def test_syntax_error_is_caught(checked: dict[str, list[Diagnostic]]) -> None:
    errors = [d for d in checked["syntax_error"] if d.is_error]
    assert errors, "a syntax error must be reported"
    assert "KS006" in [d.code for d in errors]


def test_many_queries_in_one_call_keep_their_names(checked: dict[str, list[Diagnostic]]) -> None:
    for name in MANY:
        assert checked[name] == []
    assert {"unknown_column", "unknown_table"} <= {n for n, d in checked.items() if d}


def test_schema_decides_what_binds_and_errors_only_filters() -> None:
    text = "{} | summarize s = sum(amount) by who"
    schemas = {"Numbers": {"amount": "real", "who": "string"}, "Strings": {"amount": "string", "who": "string"}}
    result = check_kql({"numbers": text.format("Numbers"), "strings": text.format("Strings")}, schemas)
    assert result["numbers"] == []
    # the same query over a string column: sum() needs something summable
    assert [d.code for d in result["strings"]] == ["KS138"]
    assert all(d.is_error for diags in result.values() for d in diags)


def test_unknown_column_type_is_an_error_not_a_pass() -> None:
    with pytest.raises(RuntimeError, match="unknown Kusto type"):
        check_kql({"q": "T | take 1"}, {"T": {"a": "varchar"}})


def test_missing_node_modules_says_what_to_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import kusto

    monkeypatch.setattr(kusto, "PACKAGE_DIR", tmp_path / "node_modules" / "@kusto" / "language-service-next")
    with pytest.raises(KustoCheckerUnavailable, match=r"make test.*npm ci"):
        check_kql({"q": "T | take 1"}, {"T": {"a": "long"}})
