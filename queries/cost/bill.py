"""The bill, and reconciling the ledger's estimate with it.

What Azure bills is the final truth. `CostManagementBill` reads it through the Cost Management Query API
(azure-mgmt-costmanagement, `POST {scope}/providers/Microsoft.CostManagement/query`): cost per day ×
resource × meter (ActualCost, or AmortizedCost), following `properties.nextLink`, waiting as the
`x-ms-ratelimit-microsoft.costmanagement-*-retry-after` headers of a 429 say, and naming the role a
401/403 needs (Cost Management Reader on the scope).

`reconcile` joins the bill to the ledger's estimate per day × account × model × meter. Cost Management
bills an account (not a deployment) and names the model only inside the meter name
("gpt 4o 0806 cached Inp glbl Tokens"), so `parse_meter` reads (model, meter) from it, as the price list's
meter names are read. Status per line:

- ``match``: estimate and bill agree within `drift_pct` or `drift_min_usd`;
- ``drift``: they differ by more than both (the bill is missing a line the estimate has, too);
- ``pending``: the day is within `lag_days` of today and the bill may not be final (it lags 1-3 days);
- ``unpriced``: the ledger has usage no price covers, so there is no estimate to compare;
- ``bill-only``: billed, but nothing in the logs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from queries.config import Settings
from queries.cost.ledger import METER_CACHED, METER_EMBEDDINGS, METER_INPUT, METER_OUTPUT, METER_PTU

MATCH, DRIFT, PENDING, UNPRICED, BILL_ONLY = "match", "drift", "pending", "unpriced", "bill-only"
ACTUAL, AMORTIZED = "ActualCost", "AmortizedCost"
COST_TYPES = {"actual": ACTUAL, "amortized": AMORTIZED}  # the CLI's word -> the Query API's type
STATUSES = (MATCH, DRIFT, PENDING, UNPRICED, BILL_ONLY)
KEY = ["Day", "ResourceId", "Model", "Meter"]
ROLE = "Cost Management Reader"
BILL_COLUMNS = ["Day", "ResourceId", "MeterName", "Cost"]

_SCOPE_WORDS = {"glbl", "global", "gl", "dz", "dzone", "data", "zone", "regnl", "regional", "tokens", "std", "1m", "1k"}
_CACHED = {"cached", "cd", "cchd"}
_INPUT = {"inp", "inpt", "input", "in"}
_OUTPUT = {"outp", "opt", "output", "out"}


def bill_scope(settings: Settings) -> str | None:
    """The Cost Management scope the bill is read for: `billing.scope`, else the source's subscription."""
    if settings.billing.scope:
        return settings.billing.scope
    sub = settings.source.subscription_id
    return f"/subscriptions/{sub}" if sub else None


def whole_days(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """[start, end) widened to whole UTC days: the bill has one line per day."""
    s, e = (pd.Timestamp(t) for t in (start, end))
    s = s.tz_localize("UTC") if s.tzinfo is None else s.tz_convert("UTC")
    e = e.tz_localize("UTC") if e.tzinfo is None else e.tz_convert("UTC")
    return s.floor("D").to_pydatetime(), e.ceil("D").to_pydatetime()


def parse_meter(name: str) -> tuple[str, str]:
    """(model, meter) of a Cost Management / price list meter name; ("", "") when it is not an Azure
    OpenAI token or PTU meter. The version tag (0806, 1120) and the scope words are dropped."""
    text = str(name).strip().lower()
    if "provisioned" in text or re.search(r"\bptu\b", text):
        return "", METER_PTU
    words = [w for w in re.split(r"[\s\-_]+", text) if w]
    meter = ""
    model_words: list[str] = []
    for w in words:
        if w in _CACHED:
            meter = METER_CACHED
        elif w in _INPUT:
            meter = meter or METER_INPUT
        elif w in _OUTPUT:
            meter = METER_OUTPUT
        elif not meter and w not in _SCOPE_WORDS and not re.fullmatch(r"\d{4}", w) and w != "batch":
            model_words.append(w)
    model = "-".join(model_words)
    if "embedding" in model:
        return model, METER_EMBEDDINGS
    return (model, meter) if meter and model else ("", "")


def estimate_daily(ledger: pd.DataFrame, resource_ids: dict[str, str]) -> pd.DataFrame:
    """The ledger per day × account (ARM id, lower case) × model × meter: Estimate (priced cost), and
    UnpricedQuantity (quantity no price covers). PTU-hours are one line per account without a model, as
    the bill has them; a provisioned deployment's token rows (no cost of their own) are left out."""
    if ledger.empty:
        return pd.DataFrame(columns=[*KEY, "Estimate", "UnpricedQuantity"])
    rows = ledger.copy()
    ids = {k.lower(): v.lower() for k, v in resource_ids.items()}
    rows["Day"] = pd.to_datetime(rows["Hour"], utc=True).dt.floor("D")
    rows["ResourceId"] = rows["Resource"].astype(str).str.lower().map(lambda r: ids.get(r, r))
    ptu = rows["Meter"] == METER_PTU
    covered = (~ptu) & rows["Priced"].astype(bool) & rows["PriceKey"].astype(str).str.startswith("provisioned")
    rows = rows[~covered]
    rows["Model"] = np.where(rows["Meter"] == METER_PTU, "", rows["Model"].astype(str).str.lower())
    priced = rows["Priced"].astype(bool)
    rows["Estimate"] = rows["EffectiveCost"].where(priced, 0.0).astype("float64")
    rows["UnpricedQuantity"] = rows["Quantity"].where(~priced, 0.0).astype("float64")
    return rows.groupby(KEY, as_index=False)[["Estimate", "UnpricedQuantity"]].sum()


def _base_model(model: str) -> str:
    """The model as a meter name spells it: `gpt-4o-mini` from `gpt-4o-mini-2024-07-18` or `gpt-4o-mini`."""
    return re.sub(r"-\d{4}-\d{2}-\d{2}$", "", model.lower())


def billed_daily(bill: pd.DataFrame) -> pd.DataFrame:
    """The bill's rows (Day, ResourceId, MeterName, Cost) per day × account × model × meter; rows that are
    not Azure OpenAI token or PTU meters are left out."""
    if bill.empty:
        return pd.DataFrame(columns=[*KEY, "Billed"])
    b = bill.copy()
    parsed = b["MeterName"].map(parse_meter)
    b["Model"] = parsed.map(lambda p: p[0])
    b["Meter"] = parsed.map(lambda p: p[1])
    b = b[b["Meter"] != ""]
    b["Day"] = pd.to_datetime(b["Day"], utc=True).dt.floor("D")
    b["ResourceId"] = b["ResourceId"].astype(str).str.lower()
    b["Billed"] = pd.to_numeric(b["Cost"], errors="coerce").fillna(0.0)
    return b.groupby(KEY, as_index=False)["Billed"].sum()


def reconcile(
    estimate: pd.DataFrame,
    billed: pd.DataFrame,
    *,
    today: date,
    lag_days: int = 3,
    drift_pct: float = 5.0,
    drift_min_usd: float = 0.01,
) -> pd.DataFrame:
    """Estimate beside bill per day × account × model × meter: Day, ResourceId, Model, Meter, Estimate,
    Billed, Difference (billed - estimate), DifferencePct (of the estimate), Status."""
    est = estimate.copy()
    est["Model"] = est["Model"].map(lambda m: _base_model(str(m)))
    est = est.groupby(KEY, as_index=False)[["Estimate", "UnpricedQuantity"]].sum()
    out = est.merge(billed, on=KEY, how="outer")
    out["Estimate"] = out["Estimate"].astype("float64")
    out["Billed"] = out["Billed"].astype("float64")
    out["UnpricedQuantity"] = out["UnpricedQuantity"].fillna(0.0)
    in_logs = out["Estimate"].notna()
    e, b = out["Estimate"].fillna(0.0), out["Billed"].fillna(0.0)
    out["Difference"] = b - e
    out["DifferencePct"] = np.where(e > 0, 100.0 * (b - e) / e.where(e > 0, 1.0), np.nan)
    cutoff = pd.Timestamp(today, tz="UTC") - pd.Timedelta(days=lag_days)
    differs = (out["Difference"].abs() > drift_min_usd) & (out["DifferencePct"].abs().fillna(np.inf) > drift_pct)
    status = np.where(differs, DRIFT, MATCH).astype(object)
    status = np.where(out["Day"] >= cutoff, PENDING, status)
    status = np.where(in_logs & (out["UnpricedQuantity"] > 0) & (e == 0), UNPRICED, status)
    status = np.where(~in_logs & (b.abs() > drift_min_usd), BILL_ONLY, status)
    out["Status"] = status
    cols = [*KEY, "Estimate", "Billed", "Difference", "DifferencePct", "Status"]
    return out[cols].sort_values(KEY, kind="stable").reset_index(drop=True)


def flagged(rec: pd.DataFrame) -> pd.DataFrame:
    """The lines someone should look at: drift and bill-only."""
    return rec[rec["Status"].isin([DRIFT, BILL_ONLY])]


# ---- the Cost Management Query API ------------------------------------------------------------------


class BillError(RuntimeError):
    """The bill could not be read; the message says why and, for 401/403, which role is needed."""


RETRY_HEADERS = (
    "x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after",
    "x-ms-ratelimit-microsoft.costmanagement-entity-retry-after",
    "x-ms-ratelimit-microsoft.costmanagement-tenant-retry-after",
    "x-ms-ratelimit-microsoft.costmanagement-client-retry-after",
    "retry-after",
)


def retry_after(headers: Any) -> float:
    """The longest wait the throttling headers ask for (seconds), at least 1."""
    waits = []
    for h in RETRY_HEADERS:
        v = headers.get(h) if headers is not None else None
        if v is not None:
            try:
                waits.append(float(v))
            except ValueError:
                continue
    return max([1.0, *waits])


@dataclass
class CostManagementBill:
    """The bill of one scope from the Query API, through the real SDK client.

    `client`: an `azure.mgmt.costmanagement.CostManagementClient` (tests point it at a local server).
    `sleep`: how to wait when throttled (tests record the waits instead of sleeping)."""

    client: Any
    scope: str
    cost_type: str = "ActualCost"  # or AmortizedCost
    max_retries: int = 4
    sleep: Callable[[float], None] = time.sleep
    request_kwargs: dict[str, Any] = field(default_factory=dict)  # per-call options (tests: plain http)

    @classmethod
    def connect(
        cls,
        scope: str,
        endpoint: str = "https://management.azure.com",
        credential: Any = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> CostManagementBill:
        """The real client for `scope` at the management `endpoint` (a loopback http endpoint: a test server)."""
        from urllib.parse import urlparse

        from azure.mgmt.costmanagement import CostManagementClient

        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        endpoint = endpoint.rstrip("/")
        host = urlparse(endpoint).hostname or ""
        local = host in ("localhost", "127.0.0.1", "::1")
        audience = "https://management.azure.com" if local else endpoint
        # throttling is handled here (the SDK's retry policy does not read Cost Management's headers)
        client = CostManagementClient(
            credential, base_url=endpoint, retry_total=0, credential_scopes=[f"{audience}/.default"]
        )
        options = {"enforce_https": False} if local and endpoint.startswith("http://") else {}
        return cls(client, scope, sleep=sleep, request_kwargs=options)

    def _definition(self, start: datetime, end: datetime, cost_type: str) -> Any:
        from azure.mgmt.costmanagement import models as m

        return m.QueryDefinition(
            type=cost_type,
            timeframe="Custom",
            time_period=m.QueryTimePeriod(
                from_property=start.replace(hour=0, minute=0, second=0, microsecond=0),
                to=end - timedelta(seconds=1),
            ),
            dataset=m.QueryDataset(
                granularity="Daily",
                aggregation={"totalCost": m.QueryAggregation(name="Cost", function="Sum")},
                grouping=[
                    m.QueryGrouping(type="Dimension", name="ResourceId"),
                    m.QueryGrouping(type="Dimension", name="Meter"),
                ],
            ),
        )

    def _call(self, fn: Callable[[], Any]) -> Any:
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

        for attempt in range(self.max_retries + 1):
            try:
                return fn()
            except (ClientAuthenticationError, HttpResponseError) as e:
                code = getattr(e, "status_code", None)
                if code in (401, 403):
                    raise BillError(
                        f"Cost Management answered {code} for {self.scope}: the identity needs the {ROLE} "
                        "role on that scope (or Billing Reader on a billing account)"
                    ) from None
                if code == 429 and attempt < self.max_retries:
                    self.sleep(retry_after(getattr(e.response, "headers", None)))
                    continue
                raise BillError(f"Cost Management answered {code}: {e.reason or e.message}") from None
        raise BillError("Cost Management kept throttling")  # pragma: no cover (the loop returns or raises)

    def daily(self, start: datetime, end: datetime, cost_type: str | None = None) -> pd.DataFrame:
        """Cost per day × resource × meter in [start, end): Day, ResourceId, MeterName, Cost. `cost_type`
        (default: this client's) is ActualCost or AmortizedCost."""
        from azure.core.rest import HttpRequest

        kind = cost_type or self.cost_type
        if kind not in (ACTUAL, AMORTIZED):
            raise BillError(f"unknown cost type {kind!r}: {ACTUAL} or {AMORTIZED}")
        definition = self._definition(start, end, kind)
        result = self._call(lambda: self.client.query.usage(self.scope, definition, **self.request_kwargs))
        frames = []
        while result is not None:
            props = result.properties if hasattr(result, "properties") else result.get("properties", {})
            props = props or {}
            columns = [c["name"] for c in (props.get("columns") or [])]
            frames.append(pd.DataFrame(props.get("rows") or [], columns=columns))
            nxt = props.get("nextLink")
            if not nxt:
                break
            request = HttpRequest("POST", nxt, json=definition.as_dict())

            def page(req: HttpRequest = request) -> Any:
                from azure.core.exceptions import HttpResponseError

                resp = self.client.send_request(req, **self.request_kwargs)
                if resp.status_code >= 400:
                    raise HttpResponseError(response=resp)
                return resp.json()

            result = self._call(page)
        raw = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        return _bill_frame(raw)


def _bill_frame(raw: pd.DataFrame) -> pd.DataFrame:
    if raw.empty:
        return pd.DataFrame(columns=BILL_COLUMNS)
    cols = {c.lower(): c for c in raw.columns}
    day_col = cols.get("usagedate") or cols.get("billingmonth") or cols.get("date")
    cost_col = cols.get("cost") or cols.get("pretaxcost") or cols.get("costusd")
    if day_col is None or cost_col is None:
        raise BillError(f"Cost Management answered columns {list(raw.columns)}; expected UsageDate and Cost")
    day = pd.to_datetime(raw[day_col].astype(str), format="%Y%m%d", utc=True, errors="coerce")
    return pd.DataFrame(
        {
            "Day": day,
            "ResourceId": raw[cols.get("resourceid", "ResourceId")].astype(str),
            "MeterName": raw[cols.get("meter", "Meter")].astype(str),
            "Cost": pd.to_numeric(raw[cost_col], errors="coerce").fillna(0.0),
        }
    )
