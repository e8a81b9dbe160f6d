"""A/B probes: one probe definition against two targets, compared side by side.

A target is an Azure OpenAI deployment (`AzureOpenAI` with an api-version) or any OpenAI-compatible
API (`OpenAI` with a `base_url`: the standard OpenAI API, Azure's v1 URL, another region's gateway),
called through the same openai SDK and classified by the same `run_probe`, so the two sides differ only
in where they go. Each side's key is read when the client is made, from the environment variable the
target names or the file its `_FILE` variant names. Results land in the probe store with the probe's
name (`ab`) and the side's label (`arm`); `summary` is the comparison the Probes page shows.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pandas as pd

from queries.config import ABProbe, ABTarget, ProbeTarget

SUMMARY_COLUMNS = [
    "ab",
    "arm",
    "target",
    "probes",
    "errors",
    "error_pct",
    "latency_p50_ms",
    "latency_p95_ms",
    "ttft_p50_ms",
    "ttft_p95_ms",
    "cost_per_probe_usd",
]


class KeyMissing(ValueError):
    """A target's key is in neither its environment variable nor the file its _FILE variant names."""


def target_key(t: ABTarget, environ: Mapping[str, str] | None = None) -> str:
    """The target's key from `key_env` or `<key_env>_FILE` (read now, so a rotated key is picked up)."""
    env = os.environ if environ is None else environ
    name = t.key_env or ""
    if name and env.get(name):
        return env[name]
    file_var = f"{name}_FILE"
    if name and env.get(file_var):
        try:
            key = Path(env[file_var]).read_text().strip()
        except OSError as e:
            raise KeyMissing(
                f"A/B target {t.label}: cannot read the key file named by {file_var}: {e.strerror}"
            ) from None
        if key:
            return key
    raise KeyMissing(f"A/B target {t.label}: no key in {name} or {file_var}")


def make_ab_client(t: ABTarget, url: str, key: str, *, timeout_s: float, http_client: Any = None) -> openai.OpenAI:
    """An SDK client for one side: `AzureOpenAI` on an endpoint, or `OpenAI` on a base URL. No retries
    (a probe must see what a user would see)."""
    common: dict[str, Any] = {"max_retries": 0, "timeout": timeout_s, "api_key": key}
    if http_client is not None:
        common["http_client"] = http_client
    if t.api == "azure":
        return openai.AzureOpenAI(azure_endpoint=url.rstrip("/"), api_version=t.api_version, **common)
    return openai.OpenAI(base_url=url.rstrip("/") + "/", **common)


def probe_target(ab: ABProbe, t: ABTarget) -> ProbeTarget:
    """The regular probe shape `run_probe` takes, for one side."""
    return ProbeTarget(deployment=t.name, kind=ab.kind, interval_s=ab.interval_s, stream=ab.stream)


def _pct(values: pd.Series, q: float) -> float:
    v = pd.to_numeric(values, errors="coerce").dropna()
    return float(np.percentile(v, q)) if len(v) else float("nan")


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per A/B probe and side: probes, errors (every class but ok) and their share, latency p50/p95 and
    time-to-first-token p50/p95 of successful probes, mean cost of a priced probe (NaN: unpriced)."""
    rows: list[dict[str, Any]] = []
    if frame.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    for (ab, arm), g in frame.groupby(["ab", "arm"], sort=True):
        ok = g[g["class"] == "ok"]
        errors = int((g["class"] != "ok").sum())
        cost = pd.to_numeric(g["cost_usd"], errors="coerce").dropna()
        rows.append(
            {
                "ab": ab,
                "arm": arm,
                "target": str(g["deployment"].iloc[-1]),
                "probes": len(g),
                "errors": errors,
                "error_pct": 100.0 * errors / len(g),
                "latency_p50_ms": _pct(ok["latency_ms"], 50),
                "latency_p95_ms": _pct(ok["latency_ms"], 95),
                "ttft_p50_ms": _pct(ok["ttft_ms"], 50),
                "ttft_p95_ms": _pct(ok["ttft_ms"], 95),
                "cost_per_probe_usd": float(cost.mean()) if len(cost) else float("nan"),
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def verdict(s: pd.DataFrame) -> dict[str, str]:
    """Per A/B probe, one line: which side was faster (latency p50) and by how much, and the error rates."""
    out: dict[str, str] = {}
    for ab, g in s.groupby("ab", sort=True):
        if len(g) != 2:
            out[str(ab)] = f"{ab}: only {', '.join(map(str, g['arm']))} has results so far"
            continue
        a, b = g.iloc[0], g.iloc[1]
        if np.isnan(a["latency_p50_ms"]) or np.isnan(b["latency_p50_ms"]):
            out[str(ab)] = f"{ab}: no successful probe on one side yet"
            continue
        fast, slow = (a, b) if a["latency_p50_ms"] <= b["latency_p50_ms"] else (b, a)
        ratio = slow["latency_p50_ms"] / fast["latency_p50_ms"] if fast["latency_p50_ms"] > 0 else float("inf")
        out[str(ab)] = (
            f"{ab}: {fast['arm']} is faster (p50 {fast['latency_p50_ms']:,.0f} ms vs {slow['latency_p50_ms']:,.0f} ms, "
            f"{ratio:.2f}x); errors {a['arm']} {a['error_pct']:.1f}%, {b['arm']} {b['error_pct']:.1f}%"
        )
    return out
