"""A tiny price book and frame builders for the cost tests: every price a round number per 1M tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class FakePrice:
    input_per_1m: float | None
    cached_input_per_1m: float | None
    output_per_1m: float | None
    ptu_per_hour: float | None
    key: str = "fake"
    source: str = "fake"


PRICES = {
    ("m1", "GlobalStandard"): FakePrice(2.0, 1.0, 10.0, None, "m1 global"),
    ("m1", "GlobalBatch"): FakePrice(1.0, None, 5.0, None, "m1 batch"),
    ("m1", "ProvisionedManaged"): FakePrice(None, None, None, 2.0, "ptu regional"),
}


class FakeBook:
    discount_pct = 0.0

    def __init__(self, prices: dict[tuple[str, str], FakePrice] | None = None) -> None:
        self.prices = PRICES if prices is None else prices

    def lookup(self, model: str, version: str | None, sku: str, region: str | None) -> FakePrice | None:
        return self.prices.get((model, sku))

    def explain(self, model: str, version: str | None, sku: str, region: str | None) -> tuple[FakePrice | None, str]:
        p = self.lookup(model, version, sku, region)
        return p, "" if p is not None else f"no fake price for {model} ({sku})"

    def price_usage(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.copy()
        costs, ok, keys = [], [], []
        for r in frame.itertuples(index=False):
            p = self.lookup(r.model, r.version, r.sku, r.region)
            if p is None or p.input_per_1m is None:
                costs.append(np.nan)
                ok.append(False)
                keys.append("unpriced")
                continue
            cached = min(float(r.cached_tokens), float(r.prompt_tokens))
            cached_rate = p.cached_input_per_1m if p.cached_input_per_1m is not None else p.input_per_1m
            cost = (float(r.prompt_tokens) - cached) * p.input_per_1m + cached * cached_rate
            cost += float(r.completion_tokens) * (p.output_per_1m or 0.0)
            costs.append(cost / 1e6)
            ok.append(True)
            keys.append(p.key)
        out["cost"] = costs
        out["priced"] = ok
        out["price_key"] = keys
        return out


def deployments(*rows: tuple[str, str, str, int, int]) -> pd.DataFrame:
    """(deployment, model, sku, capacity, tpm_limit) on resource `res1` in eastus."""
    return pd.DataFrame(
        [
            {
                "Resource": "res1",
                "ResourceId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/res1",
                "Location": "eastus",
                "Deployment": d,
                "Sku": sku,
                "Capacity": cap,
                "Model": model,
                "Version": "1",
                "TpmLimit": tpm,
                "RpmLimit": 100,
            }
            for d, model, sku, cap, tpm in rows
        ]
    )


def usage(*rows: tuple) -> pd.DataFrame:
    """(time, deployment, model, object id, ip, requests, usage rows, prompt, cached, completion, req bytes, resp bytes)."""
    cols = [
        "TimeGenerated",
        "Deployment",
        "Model",
        "ObjectId",
        "CallerIP",
        "Requests",
        "UsageRows",
        "PromptTokens",
        "CachedTokens",
        "CompletionTokens",
        "RequestBytes",
        "ResponseBytes",
    ]
    df = pd.DataFrame([dict(zip(cols, r, strict=True)) for r in rows], columns=cols)
    df["TimeGenerated"] = pd.to_datetime(df["TimeGenerated"], utc=True)
    df["Resource"] = "res1"
    df["ModelVersion"] = "1"
    df["Succeeded"] = df["Requests"]
    return df


def metrics(*rows: tuple[datetime | str, str, float, float]) -> pd.DataFrame:
    """(hour, deployment, prompt tokens, generated tokens) -> metrics API rows."""
    out = []
    for t, dep, prompt, generated in rows:
        for name, value in (("ProcessedPromptTokens", prompt), ("GeneratedTokens", generated)):
            out.append(
                {
                    "TimeStamp": pd.Timestamp(t, tz="UTC") if not isinstance(t, pd.Timestamp) else t,
                    "ResourceId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/RES1",
                    "MetricName": name,
                    "ModelDeploymentName": dep,
                    "Value": value,
                }
            )
    return pd.DataFrame(out)
