"""Alerts: the rules, their current state, and the history of transitions and notification deliveries."""

from __future__ import annotations

from typing import Any

import dash
import pandas as pd
from dash import Input, Output, callback

from dashboard import figures
from dashboard.data import Context, context, store_result
from dashboard.filters import Filters
from dashboard.layout import filters_id, page_shell, row
from dashboard.panels import body_id, frame_table, panel, panel_body, safe
from queries.results import QueryResult

dash.register_page(__name__, path="/alerts", name="Alerts", order=5, title="Alerts · aoai-lens")

PAGE = "alert"
PANELS = ("rules", "timeline", "transitions", "deliveries")


def layout(**query: Any) -> Any:
    return page_shell(
        PAGE,
        "Alerts",
        "Rules from the configuration, what is firing now, every state change and every notification attempt.",
        query,
        [
            row(
                (
                    panel(
                        PAGE, "rules", "Rules and current state", "One line per rule and subject it judges", height=140
                    ),
                    12,
                )
            ),
            row((panel(PAGE, "timeline", "Transitions", "Each change of state, coloured by the new state"), 12)),
            row(
                (panel(PAGE, "transitions", "Transition history", "Newest first, with the reason"), 6),
                (panel(PAGE, "deliveries", "Deliveries", "Every notification attempt and its error"), 6),
            ),
        ],
        show=("range",),
    )


def rules_frame(rules: list[Any], states: pd.DataFrame) -> pd.DataFrame:
    """Configured rules joined with their current states, one row per (rule, subject): a subject judged OK
    shows "ok" with its last value and when it was last evaluated; a rule with no state yet shows 'not
    evaluated'."""
    cols = [
        "rule",
        "kind",
        "threshold",
        "window_min",
        "scope",
        "channels",
        "subject",
        "state",
        "since",
        "value",
        "reason",
        "evaluated",
    ]
    base = pd.DataFrame(
        [
            {
                "rule": r.name,
                "kind": r.kind,
                "threshold": r.threshold,
                "window_min": r.window_minutes,
                "scope": r.deployment or r.team or r.feature or "all",
                "channels": ", ".join(r.channels),
            }
            for r in rules
        ],
        columns=cols[:6],
    )
    st = (
        states.copy()
        if states is not None and not states.empty
        else pd.DataFrame(columns=["rule", "subject", "state", "since", "value", "reason", "evaluated"])
    )
    if "evaluated" not in st.columns:
        st["evaluated"] = None
    merged = base.merge(st, on="rule", how="outer")
    merged["state"] = merged["state"].fillna("not evaluated")
    for col in ("since", "evaluated"):
        merged[col] = pd.to_datetime(pd.to_numeric(merged[col], errors="coerce"), unit="s", utc=True)
    order = {"firing": 0, "pending": 1, "ok": 2, "resolved": 2, "not evaluated": 3}
    merged["_o"] = merged["state"].map(order).fillna(2)
    return merged.sort_values(["_o", "rule", "subject"]).drop(columns="_o")[cols].reset_index(drop=True)


def render(f: Filters, ctx: Context) -> list[Any]:
    store = ctx.store()
    now = ctx.now()
    start, end = f.window(now)
    if store is not None:
        states = store_result("alert states", store.current_states)
        trans = store_result("transitions", lambda: pd.DataFrame([t.__dict__ for t in store.transitions()]))
        deliv = store_result("deliveries", lambda: pd.DataFrame(store.deliveries()))
    else:
        empty = QueryResult(name="alerts store", frame=pd.DataFrame(), notice=None)
        states = trans = deliv = empty

    def in_range(frame: pd.DataFrame) -> pd.DataFrame:
        if frame.empty or "ts" not in frame.columns:
            return frame
        return frame[(frame["ts"] >= start.timestamp()) & (frame["ts"] <= end.timestamp())]

    def rules() -> list[Any]:
        frame = rules_frame(list(ctx.settings.alerts.rules), states.frame)
        table = frame_table(
            frame,
            {"value": "{:,.2f}", "threshold": "{:g}"},
            max_rows=40,
            empty="No alert rules configured (alerts.rules in aoai-lens.toml)",
        )
        firing = int((frame["state"] == "firing").sum()) if not frame.empty else 0
        return panel_body(PAGE, "rules", table, [states], frame=frame, note=f"{firing} firing")

    def timeline() -> list[Any]:
        frame = in_range(trans.frame)
        return panel_body(PAGE, "timeline", figures.transitions_timeline(frame), [trans], frame=frame)

    def transitions() -> list[Any]:
        frame = in_range(trans.frame)
        if not frame.empty:
            frame = frame.sort_values("ts", ascending=False)
            frame.insert(0, "Time", pd.to_datetime(frame["ts"], unit="s", utc=True))
            # backfilled: judged over the demo's seeded month when it was built (nobody was notified)
            frame["source"] = frame.get("backfilled", pd.Series(False, index=frame.index)).map(
                {True: "backfilled", False: "live"}
            )
            frame = frame[["Time", "rule", "subject", "old", "new", "value", "source", "reason"]]
        table = frame_table(frame, {"value": "{:,.2f}"}, max_rows=15, empty="No transitions in this range")
        filled = int((frame["source"] == "backfilled").sum()) if not frame.empty else 0
        note = f"{filled} backfilled from the seeded month, not notified" if filled else None
        return panel_body(PAGE, "transitions", table, [trans], frame=frame, note=note)

    def deliveries() -> list[Any]:
        frame = in_range(deliv.frame)
        if not frame.empty:
            frame = frame.sort_values("ts", ascending=False).copy()
            frame.insert(0, "Time", pd.to_datetime(frame["ts"], unit="s", utc=True))
            frame["ok"] = frame["ok"].map({1: "delivered", 0: "failed"}).fillna(frame["ok"].astype(str))
            frame = frame[[c for c in ["Time", "channel", "ok", "error", "transition_id"] if c in frame.columns]]
        table = frame_table(frame, max_rows=15, empty="No notification attempts in this range")
        return panel_body(PAGE, "deliveries", table, [deliv], frame=frame)

    builders = {"rules": rules, "timeline": timeline, "transitions": transitions, "deliveries": deliveries}
    return [safe(PAGE, k, builders[k]) for k in PANELS]


@callback([Output(body_id(PAGE, k), "children") for k in PANELS], Input(filters_id(PAGE), "data"))
def fill(data: dict[str, Any] | None) -> list[Any]:
    return render(Filters.from_store(data), context())
