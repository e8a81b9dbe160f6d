"""Assemble README.md from the sections in docs/readme/ (`python docs/build_readme.py`).

Each layer documents itself in its own file; this keeps one README in a fixed order.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ROOT / "docs" / "readme"
ORDER = [
    "00-intro.md",
    "01-quickstart.md",
    "dashboard.md",
    "02-architecture.md",
    "03-configuration.md",
    "queries.md",
    "cost.md",
    "prices.md",
    "alerts.md",
    "production.md",
    "robustness.md",
    "90-development.md",
    "development-kql.md",
    "bench.md",
]


def build() -> str:
    parts = []
    for name in ORDER:
        path = SECTIONS / name
        if path.exists():
            parts.append(path.read_text().strip() + "\n")
    extra = sorted(p.name for p in SECTIONS.glob("*.md") if p.name not in ORDER)
    if extra:
        raise SystemExit(f"docs/readme has sections not in ORDER: {', '.join(extra)}")
    return "\n".join(parts)


if __name__ == "__main__":
    text = build()
    if "--check" in sys.argv:
        sys.exit(0 if (ROOT / "README.md").read_text() == text else 1)
    (ROOT / "README.md").write_text(text)
