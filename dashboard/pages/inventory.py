"""Inventory (platform owners): every Azure OpenAI and AI Services account across the configured
subscriptions, how it is exposed, where its logs go, its deployments with their retirement dates, and
what to fix. Read from Resource Graph, ARM and Azure Monitor (`queries.inventory`); the estate as it is
now, so the time range does not apply. Team-scoped users are not shown it (`queries.scoped`)."""

from __future__ import annotations

from typing import Any

import dash
import pandas as pd
from dash import Input, Output, callback, html

from dashboard import figures
from dashboard.data import Context, page_answer
from dashboard.filters import Filters
from dashboard.layout import filters_id, page_shell, row
from dashboard.panels import body_id, frame_table, panel, panel_body, safe
from queries.inventory import Inventory
from queries.results import QueryResult
from queries.scoped import ScopeError, whole

dash.register_page(__name__, path="/inventory", name="Inventory", order=7, title="Inventory · aoai-lens")

PAGE = "inv"
PANELS = ("flags", "retirement", "accounts", "deployments", "diagnostics")

FLAG_NAMES = {
    "diagnostics_incomplete": "Logs not exported",
    "public_network_access": "Public network access",
    "key_auth_enabled": "API keys enabled",
    "model_retiring": "Model retiring",
}


def layout(**query: Any) -> Any:
    return page_shell(
        PAGE,
        "Inventory",
        "For platform owners: every Azure OpenAI and AI Services account in the subscriptions, how it is "
        "reached, where its logs go, and which models retire soon.",
        query,
        [
            row((panel(PAGE, "flags", "What to fix", "One row per finding, with what to do", height=160), 12)),
            row(
                (
                    panel(
                        PAGE,
                        "retirement",
                        "Days until each deployment's model retires",
                        "From the region's models list; red within the retirement threshold",
                    ),
                    12,
                )
            ),
            row((panel(PAGE, "accounts", "Accounts", "Kind, region, network access, key auth", height=160), 12)),
            row(
                (
                    panel(
                        PAGE,
                        "deployments",
                        "Deployments",
                        "Type, capacity, model and version, spillover target, retirement date",
                        height=160,
                    ),
                    12,
                )
            ),
            row(
                (
                    panel(
                        PAGE,
                        "diagnostics",
                        "Diagnostic settings",
                        "Which log categories go to which workspace or storage account",
                        height=120,
                    ),
                    12,
                )
            ),
        ],
        show=(),
        note="the estate as it is now: the range does not apply",
    )


def _inventory(ctx: Context) -> Inventory:
    if not ctx.scope.is_everything:
        raise ScopeError(
            "the inventory lists every account in the subscriptions, with its network exposure and key "
            "authentication; it is shown to users who see every team"
        )
    return whole(ctx.lens).inventory()


def _envelope(inv: Inventory, frame: pd.DataFrame) -> QueryResult:
    return QueryResult(name="inventory", frame=frame, status=inv.status, notice=inv.notice, source=inv.source)  # type: ignore[arg-type]


def _shown(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in ("ResourceId",) if c in frame.columns])


def render(ctx: Context) -> list[Any]:
    try:
        inv = _inventory(ctx)
    except ScopeError as e:
        message = html.Div(f"Not shown: {e}.", className="text-muted small p-3 panel-empty")
        return [[message] for _ in PANELS]
    threshold = float(ctx.settings.inventory.retirement_days)

    def flags() -> list[Any]:
        f = inv.flags.assign(Flag=inv.flags["Flag"].map(FLAG_NAMES).fillna(inv.flags["Flag"]))
        shown = _shown(f).rename(columns={"Action": "What to do"})
        content = frame_table(shown, empty="Nothing to fix: every account passes every check")
        note = (
            f"{len(inv.flags)} finding(s) over {len(inv.accounts)} account(s), read {inv.taken_at:%Y-%m-%d %H:%M} UTC"
        )
        return panel_body(PAGE, "flags", content, [_envelope(inv, inv.flags)], note=note)

    def retirement() -> list[Any]:
        fig = figures.days_to_retirement(inv.deployments, threshold)
        cols = ["Account", "Deployment", "Model", "Version", "RetirementDate", "DaysToRetirement"]
        return panel_body(PAGE, "retirement", fig, [_envelope(inv, inv.deployments[cols])])

    def accounts() -> list[Any]:
        f = inv.accounts.assign(KeyAuth=inv.accounts["KeyAuth"].map({True: "on", False: "off"}))
        shown = _shown(f).rename(
            columns={
                "PublicNetworkAccess": "Public access",
                "NetworkDefaultAction": "Network default",
                "PrivateEndpoints": "Private endpoints",
                "KeyAuth": "Key auth",
                "ResourceGroup": "Resource group",
            }
        )
        content = frame_table(shown, empty="No Azure OpenAI or AI Services account in the subscriptions")
        return panel_body(PAGE, "accounts", content, [_envelope(inv, inv.accounts)])

    def deployments() -> list[Any]:
        f = inv.deployments.assign(RetirementDate=inv.deployments["RetirementDate"].dt.strftime("%Y-%m-%d"))
        shown = _shown(f).rename(columns={"RetirementDate": "Retires", "DaysToRetirement": "Days left"})
        content = frame_table(shown, {"Capacity": "{:,.0f}", "Days left": "{:,.0f}"}, max_rows=50)
        return panel_body(PAGE, "deployments", content, [_envelope(inv, inv.deployments)])

    def diagnostics() -> list[Any]:
        shown = _shown(inv.diagnostics).rename(columns={"EventHub": "Event Hub"})
        content = frame_table(shown, empty="No diagnostic setting on any account")
        return panel_body(PAGE, "diagnostics", content, [_envelope(inv, inv.diagnostics)])

    builders = {
        "flags": flags,
        "retirement": retirement,
        "accounts": accounts,
        "deployments": deployments,
        "diagnostics": diagnostics,
    }
    return [safe(PAGE, k, builders[k]) for k in PANELS]


@callback([Output(body_id(PAGE, k), "children") for k in PANELS], Input(filters_id(PAGE), "data"))
def fill(data: dict[str, Any] | None) -> list[Any]:
    Filters.from_store(data)  # the filters do not narrow the estate; read only to validate them
    return page_answer(PAGE, data, render)
