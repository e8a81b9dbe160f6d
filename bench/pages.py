"""Our path: each dashboard page's data computed by the page's own `render(...)`, cold and warm.

Cold = the first view in a new process (fresh interpreter, empty caches; the cost ledger as built);
warm = the views after it in that process. After timing, the page's key aggregates are read back from that Lens (cache
hits: the very results the page drew) so the run can check them against the naive baseline.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

# page key -> URL path (the dashboard's page registry)
PAGES = {
    "overview": "/",
    "cost": "/cost",
    "features": "/features",
    "reliability": "/reliability",
    "data_health": "/data-health",
    "probes": "/probes",
    "alerts": "/alerts",
}
STORE_ONLY = ("probes", "alerts")  # read the alerts store only: no workspace data, no baseline


def bench_settings(path: Path, data_dir: Path) -> Any:
    from queries.config import load_settings

    data_dir.mkdir(parents=True, exist_ok=True)
    return load_settings(
        environ={"AOAI_LENS_DATA_DIR": str(data_dir), "AOAI_LENS_DEMO__PATH": str(path)},
    )


def cost_aggregates(rows: pd.DataFrame) -> dict[str, Any]:
    """Allocation rows → total and per-team / per-feature cost (cents, rounded: float sums in a
    different order differ in the last bits)."""
    if rows.empty:
        return {"cost_total": 0.0, "cost_by_team": {}, "cost_by_feature": {}}
    priced = rows[rows["Priced"].astype(bool)]

    def by(col: str) -> dict[str, float]:
        g = priced.groupby(priced[col].fillna("").astype(str))["Cost"].sum()
        return {str(k): round(float(v), 4) for k, v in g.items()}

    return {
        "cost_total": round(float(priced["Cost"].sum()), 4),
        "cost_by_team": by("Team"),
        "cost_by_feature": by("Feature"),
    }


def _page_module(key: str) -> Any:
    import dash

    for page in dash.page_registry.values():
        if page["path"] == PAGES[key]:
            return sys.modules[page["module"]]
    raise KeyError(key)


def _lens(settings: Any, now: datetime) -> Any:
    from queries.cache import MemoryCache
    from queries.lens import Lens

    lens = Lens.from_settings(settings)
    lens.cache = MemoryCache()
    lens.now = lambda: now
    return lens


def window(settings: Any, rng: str, now: datetime) -> tuple[datetime, datetime]:
    """The exact [start, end] the page's catalogue queries render for this range (bucket-rounded)."""
    from dashboard.filters import Filters

    lens = _lens(settings, now)
    _spec, tr, _kql = lens.render("requests_by_status", **Filters(range=rng).time_kwargs())  # type: ignore[arg-type]
    return tr.start, tr.end


def _ours(key: str, lens: Any, settings: Any, rng: str, now: datetime) -> dict[str, Any]:
    """The page's aggregates as its panels got them, from the (warm) Lens."""
    from dashboard.costs import allocation
    from dashboard.data import Context
    from dashboard.filters import Filters

    f = Filters(range=rng)
    t = f.time_kwargs()
    out: dict[str, Any] = {}
    if key in ("overview", "reliability"):
        status = lens.run("requests_by_status", **t).frame
        out["status_classes"] = {
            str(k): int(v) for k, v in status.groupby("StatusClass")["Requests"].sum().items() if v
        }
        s = lens.run("summary_by_deployment", **t).frame
        out["summary_by_deployment"] = {
            str(r.Deployment): {
                "Requests": int(r.Requests),
                "Throttled": int(r.Throttled),
                "ServerErrors": int(r.ServerErrors),
                **({"P95": float(r.P95)} if pd.notna(r.P95) else {}),
            }
            for r in s.itertuples()
        }
        if key == "overview":
            tok = lens.run("tokens_by_deployment", **t).frame
            g = tok.groupby("Deployment")[["PromptTokens", "CachedTokens", "CompletionTokens"]].sum()
            out["tokens_by_deployment"] = {str(d): [int(v) for v in r] for d, r in g.iterrows()}
    if key == "data_health":
        h = lens.run("data_health", **t).frame
        h = h[h["Category"] != "AllMetrics"]
        out["records_by_category"] = {str(k): int(v) for k, v in h.groupby("Category")["Records"].sum().items()}
    if key in ("overview", "cost", "features", "data_health"):
        start, end = f.window(now)
        alloc = allocation(Context(settings, lens, now=lambda: now), start, end)
        out.update(cost_aggregates(alloc.rows))
    if key in ("overview", "cost"):
        from dashboard.costs import month_start

        mtd = allocation(Context(settings, lens, now=lambda: now), month_start(now), now)
        out["cost_mtd_total"] = cost_aggregates(mtd.rows)["cost_total"]
    return out


class FigureClock:
    """Time spent inside `dashboard.figures` (building plotly figures), wrapped around every public
    builder, so a page's time can be split into data and drawing."""

    def __init__(self) -> None:
        import dashboard.figures as figures

        self.seconds = 0.0
        for name in dir(figures):
            fn = getattr(figures, name)
            if callable(fn) and not name.startswith("_") and getattr(fn, "__module__", "") == figures.__name__:
                setattr(figures, name, self._wrap(fn))

    def _wrap(self, fn: Any) -> Any:
        def timed(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.seconds += time.perf_counter() - t0

        return timed

    def take(self) -> float:
        s, self.seconds = self.seconds, 0.0
        return s


def measure(
    path: str, data_dir: str, page: str, rng: str, now: str, runs: int, aggregates: bool = True
) -> dict[str, Any]:
    """Runs in a new child process: the page's first view there (cold: fresh interpreter, empty caches,
    the ledger as built) and `runs` views after it (warm), each split into drawing (figures) and the rest."""
    t_start = time.perf_counter()
    from dashboard.app import create_app
    from dashboard.data import Context
    from dashboard.filters import Filters

    settings = bench_settings(Path(path), Path(data_dir))
    at = datetime.fromisoformat(now)
    create_app(settings)  # registers the pages
    mod = _page_module(page)
    clock = FigureClock()
    f = Filters(range=rng)
    imports_s = time.perf_counter() - t_start

    def render(lens: Any) -> tuple[float, float]:
        ctx = Context(settings, lens, now=lambda: at)
        t0 = time.perf_counter()
        if page == "cost":
            mod.render(f, "team", None, ctx)
        else:
            mod.render(f, ctx)
        return time.perf_counter() - t0, clock.take()

    lens = _lens(settings, at)
    cold, cold_fig = render(lens)
    entries = list(lens.cache._data.values())  # the first view's answers: every entry is one fetch
    warm, warm_fig = [], []
    for _ in range(runs):
        w, wf = render(lens)
        warm.append(w)
        warm_fig.append(wf)
    logs = [v for _exp, v in entries if getattr(v, "source", "") not in ("management", "embedded management")]
    return {
        "cold_s": cold,
        "cold_figures_s": cold_fig,
        "imports_s": imports_s,
        "warm_s": warm,
        "warm_figures_s": warm_fig,
        "warm_median_s": statistics.median(warm) if warm else None,
        "queries_per_view": len(entries),
        "rows_transferred_per_view": int(sum(getattr(v, "rows_transferred", 0) for _e, v in entries)),
        "answers": {getattr(v, "name", "?"): int(getattr(v, "rows_transferred", 0)) for _e, v in entries},
        "logs_answers": len(logs),
        "aggregates": _ours(page, lens, settings, rng, at) if aggregates and page not in STORE_ONLY else {},
    }


__all__ = ["PAGES", "STORE_ONLY", "FigureClock", "bench_settings", "cost_aggregates", "measure", "timedelta", "window"]
