"""Quota headroom and time to limit: per deployment (TPM and RPM) and per quota pool, now and ahead.

**Headroom.** A deployment is limited by its own tokens per minute (TPM) and requests per minute (RPM,
enforced by Azure over 10-second windows: per-minute peaks understate it, the 429 explainer looks at
the windows). Deployments of one model and deployment type also draw their capacity from a quota pool:
the region's, or, since 2026 for the Global types, one subscription pool across regions (one per data
zone for the Data Zone types). The management plane's usages give each pool's allocated capacity
(`Current`) and `Limit`, in thousands of TPM; a Global or Data Zone pool is reported by every region, the
same numbers in each (assumed, as in the 429 explainer), so its rows are taken once.

**Time to limit.** The daily peak (busiest minute of each complete day, `daily_peak_load`) over the last
`HISTORY_DAYS` days is fitted with a least-squares line; the day the line reaches the limit is the
forecast, or "not within `HORIZON_DAYS` days", or "not growing". A pool's demand is the sum of its
deployments' daily peaks: an upper bound of its busiest minute (the peaks need not coincide), so a pool
is warned about early rather than late. It says when demand would outgrow what the pool allows however
its capacity is shared out. Provisioned pools count PTUs and batch pools enqueued tokens: neither is
forecast from token peaks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from queries.limits import is_batch, is_provisioned
from queries.reader import LensLike
from queries.results import QueryResult

HISTORY_DAYS = 14
HORIZON_DAYS = 90
MIN_DAYS = 3  # fewer complete days than this: no forecast

# Azure's data zones (the regions each Data Zone deployment type may process in), for the common regions.
DATA_ZONES = {
    "US": (
        "eastus",
        "eastus2",
        "centralus",
        "northcentralus",
        "southcentralus",
        "westcentralus",
        "westus",
        "westus2",
        "westus3",
    ),
    "EU": (
        "swedencentral",
        "westeurope",
        "northeurope",
        "francecentral",
        "germanywestcentral",
        "italynorth",
        "polandcentral",
        "spaincentral",
    ),
}

POOL_COLUMNS = ["Pool", "Scope", "Sku", "Model", "Deployments", "AllocatedK", "LimitK"]
HEADROOM_COLUMNS = [
    "Kind",
    "Name",
    "PeakTPM",
    "TpmLimit",
    "TpmUsedPct",
    "PeakRPM",
    "RpmLimit",
    "RpmUsedPct",
    "HeadroomPct",
    "Binding",
]
FORECAST_COLUMNS = [
    "Kind",
    "Name",
    "Limit",
    "LimitValue",
    "Latest",
    "SlopePerDay",
    "HistoryDays",
    "DaysToLimit",
    "CrossesOn",
    "Verdict",
]


def data_zone(location: str) -> str:
    loc = str(location).replace(" ", "").lower()
    return next((zone for zone, regions in DATA_ZONES.items() if loc in regions), f"zone of {loc}")


def pool_key(sku: str, model: str, location: str) -> tuple[str, str]:
    """(scope, pool name) of the quota a deployment type and model draws on in `location`."""
    if sku.startswith("Global"):
        return "subscription", f"subscription · {sku} · {model}"
    if sku.startswith("DataZone"):
        zone = data_zone(location)
        return "data zone", f"data zone {zone} · {sku} · {model}"
    return "region", f"{location} · {sku} · {model}"


def pools(deployments: pd.DataFrame, usages: pd.DataFrame) -> pd.DataFrame:
    """One row per quota pool the usages report: its deployments, allocated capacity and limit (thousands
    of TPM; PTUs for provisioned types)."""
    if usages.empty:
        return pd.DataFrame(columns=POOL_COLUMNS)
    rows: dict[str, dict[str, object]] = {}
    for u in usages.itertuples(index=False):
        sku, model = str(u.Sku), str(u.Model)
        if not sku or not model:
            continue
        scope, name = pool_key(sku, model, str(u.Location))
        row = rows.setdefault(
            name,
            {"Pool": name, "Scope": scope, "Sku": sku, "Model": model, "AllocatedK": 0.0, "LimitK": 0.0},
        )
        # a shared pool is reported by every region with the same numbers: keep it once
        row["AllocatedK"] = max(float(row["AllocatedK"]), float(u.Current))  # type: ignore[arg-type]
        row["LimitK"] = max(float(row["LimitK"]), float(u.Limit))  # type: ignore[arg-type]
    for name, row in rows.items():
        members = []
        if not deployments.empty:
            for d in deployments.itertuples(index=False):
                same_type = str(d.Sku) == row["Sku"] and str(d.Model) == row["Model"]
                if same_type and pool_key(str(d.Sku), str(d.Model), str(d.Location))[1] == name:
                    members.append(str(d.Deployment))
        row["Deployments"] = ", ".join(sorted(members))
    return pd.DataFrame(list(rows.values()), columns=POOL_COLUMNS).sort_values("Pool").reset_index(drop=True)


def _pct(peak: float, limit: float) -> float:
    return 100.0 * peak / limit if limit > 0 else math.nan


def headroom(deployments: pd.DataFrame, peaks: pd.DataFrame, usages: pd.DataFrame) -> pd.DataFrame:
    """Deployments (peak TPM and RPM against their limits) and pools (their deployments' peaks summed,
    against the pool's limit), tightest first. `peaks`: `peak_load_by_deployment` (Deployment, PeakTPM,
    PeakRPM). HeadroomPct is what is left of the tighter limit; Binding names it."""
    out = []
    p = peaks.set_index("Deployment") if not peaks.empty else pd.DataFrame(columns=["PeakTPM", "PeakRPM"])
    for d in deployments.itertuples(index=False):
        sku = str(d.Sku)
        if is_batch(sku) or is_provisioned(sku):
            continue  # batch queues; provisioned capacity is judged by its utilisation metric
        tpm = float(p["PeakTPM"].get(d.Deployment, 0.0) or 0.0) if not p.empty else 0.0
        rpm = float(p["PeakRPM"].get(d.Deployment, 0.0) or 0.0) if not p.empty else 0.0
        out.append(_headroom_row("deployment", str(d.Deployment), tpm, float(d.TpmLimit), rpm, float(d.RpmLimit)))
    for pool in pools(deployments, usages).itertuples(index=False):
        if is_provisioned(str(pool.Sku)) or is_batch(str(pool.Sku)):
            continue
        members = [m for m in str(pool.Deployments).split(", ") if m]
        tpm = float(p["PeakTPM"].reindex(members).fillna(0).sum()) if members and not p.empty else 0.0
        out.append(_headroom_row("pool", str(pool.Pool), tpm, float(pool.LimitK) * 1000, math.nan, math.nan))
    frame = pd.DataFrame(out, columns=HEADROOM_COLUMNS)
    return frame.sort_values(["HeadroomPct", "Name"], na_position="last").reset_index(drop=True)


def _headroom_row(kind: str, name: str, tpm: float, tpm_limit: float, rpm: float, rpm_limit: float) -> dict:
    tpm_pct, rpm_pct = _pct(tpm, tpm_limit), _pct(rpm, rpm_limit)
    used = {"TPM": tpm_pct, "RPM": rpm_pct}
    known = {k: v for k, v in used.items() if not math.isnan(v)}
    binding = max(known, key=lambda k: known[k]) if known else ""
    return {
        "Kind": kind,
        "Name": name,
        "PeakTPM": tpm,
        "TpmLimit": tpm_limit,
        "TpmUsedPct": tpm_pct,
        "PeakRPM": rpm,
        "RpmLimit": rpm_limit,
        "RpmUsedPct": rpm_pct,
        "HeadroomPct": 100.0 - known[binding] if binding else math.nan,
        "Binding": binding,
    }


@dataclass(frozen=True)
class Trend:
    slope: float  # per day
    latest: float  # the fitted value on the latest day
    days: int  # complete days of history the fit had


def fit(values: pd.Series) -> Trend | None:
    """A robust line through daily values (index: the days): the Theil-Sen estimator, whose slope is the
    median of the slopes between every two days and whose intercept is the median of ``y - slope x``, so
    one burst day does not tilt the trend as it would a least-squares line. Leading days with no traffic
    (before a deployment's first call) are left out; None with fewer than MIN_DAYS left."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    nonzero = np.flatnonzero(v.to_numpy() > 0)
    v = v.iloc[nonzero[0] :] if len(nonzero) else v.iloc[0:0]
    if len(v) < MIN_DAYS:
        return None
    days = pd.to_datetime(pd.Series(v.index), utc=True)
    x = ((days - days.min()) / pd.Timedelta(days=1)).to_numpy(dtype=float)
    y = v.to_numpy(dtype=float)
    i, j = np.triu_indices(len(x), k=1)
    slope = float(np.median((y[j] - y[i]) / (x[j] - x[i])))
    intercept = float(np.median(y - slope * x))
    return Trend(slope, intercept + slope * float(x.max()), len(v))


def time_to_limit(trend: Trend | None, limit: float, last_day: datetime, horizon: int = HORIZON_DAYS) -> dict:
    """DaysToLimit (from the day after `last_day`; 0 when the line is at or above the limit already),
    CrossesOn (a date) and Verdict for one fitted series."""
    if trend is None:
        return {"DaysToLimit": math.nan, "CrossesOn": None, "Verdict": f"fewer than {MIN_DAYS} complete days"}
    if not limit or limit <= 0:
        return {"DaysToLimit": math.nan, "CrossesOn": None, "Verdict": "no limit known"}
    if trend.latest >= limit:
        return {"DaysToLimit": 0.0, "CrossesOn": last_day.date(), "Verdict": "at the limit now"}
    if trend.slope <= 0:
        return {"DaysToLimit": math.nan, "CrossesOn": None, "Verdict": "not growing"}
    days = (limit - trend.latest) / trend.slope
    if days > horizon:
        return {"DaysToLimit": math.nan, "CrossesOn": None, "Verdict": f"not within {horizon} days"}
    crosses = (pd.Timestamp(last_day) + pd.Timedelta(days=math.ceil(days))).date()
    return {"DaysToLimit": float(days), "CrossesOn": crosses, "Verdict": f"crosses in {days:.0f} days ({crosses})"}


SERIES_COLUMNS = ["Kind", "Name", "Limit", "LimitValue", "Day", "Value"]


def daily_series(daily: pd.DataFrame, deployments: pd.DataFrame, usages: pd.DataFrame) -> pd.DataFrame:
    """The daily peaks the forecast fits, long: per deployment its TPM and RPM, per pool the sum of its
    deployments' TPM peaks, each with its limit. `daily`: Day, Deployment, PeakTPM, PeakRPM over
    complete days (`daily_peak_load`); a deployment with no row on a day had no traffic (peak 0)."""
    if daily.empty:
        return pd.DataFrame(columns=SERIES_COLUMNS)
    d = daily.copy()
    d["Day"] = pd.to_datetime(d["Day"], utc=True)
    days = pd.DatetimeIndex(sorted(d["Day"].unique()))
    tpm = d.pivot_table(index="Day", columns="Deployment", values="PeakTPM", aggfunc="max").reindex(days).fillna(0.0)
    rpm = d.pivot_table(index="Day", columns="Deployment", values="PeakRPM", aggfunc="max").reindex(days).fillna(0.0)
    zeros = pd.Series(0.0, index=days)
    parts = []

    def add(kind: str, name: str, limit_name: str, limit: float, values: pd.Series) -> None:
        parts.append(
            pd.DataFrame(
                {
                    "Kind": kind,
                    "Name": name,
                    "Limit": limit_name,
                    "LimitValue": limit,
                    "Day": days,
                    "Value": values.reindex(days).fillna(0.0).to_numpy(dtype=float),
                }
            )
        )

    for dep in deployments.itertuples(index=False):
        if is_batch(str(dep.Sku)) or is_provisioned(str(dep.Sku)):
            continue  # batch queues; provisioned capacity is judged by its utilisation metric
        name = str(dep.Deployment)
        add("deployment", name, "TPM", float(dep.TpmLimit), tpm[name] if name in tpm.columns else zeros)
        add("deployment", name, "RPM", float(dep.RpmLimit), rpm[name] if name in rpm.columns else zeros)
    for pool in pools(deployments, usages).itertuples(index=False):
        if is_provisioned(str(pool.Sku)) or is_batch(str(pool.Sku)):
            continue
        members = [m for m in str(pool.Deployments).split(", ") if m and m in tpm.columns]
        add("pool", str(pool.Pool), "TPM", float(pool.LimitK) * 1000, tpm[members].sum(axis=1) if members else zeros)
    if not parts:
        return pd.DataFrame(columns=SERIES_COLUMNS)
    return pd.concat(parts, ignore_index=True)[SERIES_COLUMNS]


def forecast(
    daily: pd.DataFrame,
    deployments: pd.DataFrame,
    usages: pd.DataFrame,
    *,
    horizon: int = HORIZON_DAYS,
) -> pd.DataFrame:
    """Time to limit per deployment (TPM and RPM, one row each) and per pool (TPM), soonest first, from
    `daily_series`."""
    series = daily_series(daily, deployments, usages)
    if series.empty:
        return pd.DataFrame(columns=FORECAST_COLUMNS)
    last = pd.Timestamp(series["Day"].max()).to_pydatetime()
    out = []
    for (kind, name, limit_name), g in series.groupby(["Kind", "Name", "Limit"], sort=False):
        trend = fit(g.set_index("Day")["Value"])
        limit = float(g["LimitValue"].iloc[0])
        out.append(
            {
                "Kind": kind,
                "Name": name,
                "Limit": limit_name,
                "LimitValue": limit,
                "Latest": trend.latest if trend else math.nan,
                "SlopePerDay": trend.slope if trend else math.nan,
                "HistoryDays": trend.days if trend else int((g["Value"] > 0).sum()),
                **time_to_limit(trend, limit, last, horizon),
            }
        )
    frame = pd.DataFrame(out, columns=FORECAST_COLUMNS)
    return frame.sort_values(["DaysToLimit", "Kind", "Name", "Limit"], na_position="last").reset_index(drop=True)


def history_window(now: datetime, days: int = HISTORY_DAYS) -> tuple[datetime, datetime]:
    """The last `days` complete UTC days before `now`'s day: [start, end)."""
    end = pd.Timestamp(now).tz_convert("UTC") if pd.Timestamp(now).tzinfo else pd.Timestamp(now).tz_localize("UTC")
    end = end.floor("D")
    return (end - pd.Timedelta(days=days)).to_pydatetime(), end.to_pydatetime()


def forecast_for(
    lens: LensLike, now: datetime, *, horizon: int = HORIZON_DAYS
) -> tuple[pd.DataFrame, list[QueryResult]]:
    """`forecast` over the last HISTORY_DAYS complete days through the Lens, with the results behind it
    (an empty frame when the daily peaks or the deployments failed)."""
    start, end = history_window(now)
    daily = lens.run("daily_peak_load", start=start, end=end)
    deps = lens.deployments()
    usages = lens.usages()
    results = [daily, deps, usages]
    if daily.status == "failed" or deps.status == "failed":
        return pd.DataFrame(columns=FORECAST_COLUMNS), results
    u = usages.frame if usages.status != "failed" else pd.DataFrame()
    return forecast(daily.frame, deps.frame, u, horizon=horizon), results


__all__ = [
    "FORECAST_COLUMNS",
    "HEADROOM_COLUMNS",
    "HISTORY_DAYS",
    "HORIZON_DAYS",
    "MIN_DAYS",
    "SERIES_COLUMNS",
    "Trend",
    "daily_series",
    "data_zone",
    "fit",
    "forecast",
    "forecast_for",
    "headroom",
    "history_window",
    "pool_key",
    "pools",
    "time_to_limit",
]
