"""Cost: the price book (`prices`), the Retail Prices API client (`retail`) and the cost CLI commands.

Allocation lives in `report` (with `attribution`, `ptu`, `budgets`, `focus`); `cost_frame` is the
hourly allocated cost the alert rules read.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from queries.settings import Settings


def cost_frame(settings: Settings, start: datetime, end: datetime) -> pd.DataFrame:
    """TimeGenerated (hour), Team, Feature, CostUsd of the allocated cost (see queries.cost.report)."""
    from queries.cost.report import cost_frame as frame

    return frame(settings, start, end)
