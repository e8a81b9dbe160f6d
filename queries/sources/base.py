"""The interfaces every source implements.

A logs source runs rendered KQL; a metrics source answers the Azure Monitor metrics questions; a
management source lists deployments and quota usages. The embedded demo workspace and Azure each
provide all three, so tests swap sources instead of patching SDKs. The management source also answers
the bill (what Azure charged, per day x resource x meter): Cost Management for Azure, a bill derived from
the demo's own traffic for the embedded workspace.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import pandas as pd

from queries.results import Status


@dataclass
class LogsAnswer:
    """What a logs source returns for one query, before the envelope is added."""

    frame: pd.DataFrame
    status: Status = "ok"
    notice: str | None = None
    rows: int = 0


@dataclass(frozen=True)
class LogsRequest:
    kql: str
    start: datetime
    end: datetime


class LogsSource(Protocol):
    name: str

    def run(self, request: LogsRequest) -> LogsAnswer: ...

    def run_batch(self, requests: list[LogsRequest]) -> list[LogsAnswer]: ...


class MetricsSource(Protocol):
    name: str

    def query(
        self,
        metric_names: list[str],
        *,
        start: datetime,
        end: datetime,
        interval: timedelta,
        aggregation: str = "Total",
        split_by: list[str] | None = None,
        filters: dict[str, list[str]] | None = None,
    ) -> pd.DataFrame:
        """Long frame: TimeStamp, ResourceId, MetricName, one column per split dimension (as asked,
        whatever case the service answers in), Value."""
        ...


class ManagementSource(Protocol):
    name: str

    def deployments(self) -> pd.DataFrame:
        """Resource, ResourceId, Location, Deployment, Sku, Capacity, Model, Version, TpmLimit, RpmLimit."""
        ...

    def usages(self) -> pd.DataFrame:
        """Location, Name, Sku, Model, Current, Limit (thousands of TPM)."""
        ...

    def bill(self, start: datetime, end: datetime, cost_type: str = "ActualCost") -> pd.DataFrame:
        """The bill for the days of [start, end): Day (UTC midnight), ResourceId, MeterName, Cost (USD).
        `cost_type`: "ActualCost" or "AmortizedCost" (as the Cost Management Query API names them).
        Raises when the bill cannot be read (the message says why and, for 401/403, which role is needed)."""
        ...
