"""Log Analytics traffic per page view: queries sent and rows transferred.

The page's own data path (its `render`) runs once, cold, on a Lens built from the Azure sources
(`LogsQueryClient`, the metrics batch API, ARM) pointed at the project's local servers in tests/fakes,
which answer with the bench workspace's data in the services' REST shapes and record every request.
The rows counted are the rows of the tables the Log Analytics server sent back.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def measure_la(path: str, data_dir: str, page: str, rng: str, now: str) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "tests"))
    from fakes import LogAnalyticsServer, MetricsServer
    from fakes.azure_env import ArmServer, azure_lens, azure_settings

    from bench.pages import _page_module
    from dashboard.app import create_app
    from dashboard.data import Context
    from dashboard.filters import Filters
    from queries.demo import world

    at = datetime.fromisoformat(now)
    ws = Path(path)
    with (
        LogAnalyticsServer(ws, workspace_id=world.TENANT_ID, now=at) as la,
        MetricsServer(ws, now=at) as ms,
        ArmServer(ws) as arm,
    ):
        settings = azure_settings(data_dir, la.url, ms.url, arm.url)
        lens = azure_lens(settings)
        lens.now = lambda: at
        create_app(settings)
        mod = _page_module(page)
        ctx = Context(settings, lens, now=lambda: at)
        f = Filters(range=rng)
        if page == "cost":
            mod.render(f, "team", None, ctx)
        else:
            mod.render(f, ctx)
        batches = [r for r in la.requests if r.path == "/v1/$batch"]
        singles = [r for r in la.requests if r.path.endswith("/query")]
        queries = sum(len(b.body["requests"]) for b in batches) + len(singles)
        rows = sum(
            getattr(v, "rows_transferred", 0)
            for _exp, v in lens.cache._data.values()
            if getattr(v, "source", "") == lens.logs.name
        )
        return {
            "http_requests": len(la.requests),
            "batches": len(batches),
            "queries_sent": queries,
            "rows_transferred": int(rows),
            "metrics_requests": len(ms.requests),
            "arm_requests": len(arm.requests),
        }
