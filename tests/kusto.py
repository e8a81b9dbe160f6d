"""Check KQL with Microsoft's own Kusto parser and binder, from Python tests.

`check_kql` hands every query to one Node process running `tools/kql_check.mjs`, which loads
Kusto.Language (npm `@kusto/language-service-next`, the library behind the Log Analytics editor) and
reports the diagnostics of each query bound against the table schemas given. Kusto.Language knows the
Azure Data Explorer function set (a superset of Log Analytics') and only the tables declared here, so a
query that passes is one Log Analytics would at least parse and bind.

Import it from tests as `from kusto import check_kql` (pytest puts `tests/` on `sys.path`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "kql_check.mjs"
PACKAGE_DIR = ROOT / "node_modules" / "@kusto" / "language-service-next"


class KustoCheckerUnavailable(RuntimeError):
    """Node or the npm package is missing: the checker cannot run at all."""


@dataclass(frozen=True)
class Diagnostic:
    code: str  # e.g. "KS142"
    severity: str  # "Error", "Warning", "Suggestion", ...
    message: str
    start: int  # character offset in the query text
    length: int

    @property
    def is_error(self) -> bool:
        return self.severity == "Error"

    def excerpt(self, text: str, context: int = 20) -> str:
        """The query text around this diagnostic, with the offending span in >>> <<<."""
        a, b = self.start, self.start + self.length
        return text[max(0, a - context) : a] + ">>>" + text[a:b] + "<<<" + text[b : b + context]

    def __str__(self) -> str:
        return f"{self.code} {self.severity} at {self.start}: {self.message}"


def node_executable() -> str:
    node = shutil.which("node")
    if node is None:
        raise KustoCheckerUnavailable("`node` is not on PATH: install Node 20 to run the Kusto checker")
    if not (PACKAGE_DIR / "Kusto.Language.Bridge.js").is_file():
        raise KustoCheckerUnavailable(
            f"{PACKAGE_DIR} is missing: run `make test` (or `npm ci`) to install @kusto/language-service-next"
        )
    return node


def check_kql(
    queries: Mapping[str, str],
    schemas: Mapping[str, Mapping[str, str]],
    *,
    errors_only: bool = True,
    timeout: float = 120.0,
) -> dict[str, list[Diagnostic]]:
    """Parse and bind each query (name -> text) against `schemas` (table -> column -> Kusto type).

    Returns name -> diagnostics (only those of severity Error unless `errors_only` is False); an empty
    list means Kusto.Language found nothing wrong.
    """
    node = node_executable()
    payload = {
        "schemas": {t: dict(cols) for t, cols in schemas.items()},
        "queries": [{"name": n, "text": q} for n, q in queries.items()],
    }
    proc = subprocess.run(
        [node, str(SCRIPT)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    try:
        answer = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(
            f"kql_check.mjs exited {proc.returncode} without JSON: {proc.stderr.strip()[-2000:]}"
        ) from None
    if "error" in answer:
        raise RuntimeError(f"kql_check.mjs: {answer['error']}")
    out: dict[str, list[Diagnostic]] = {}
    for name, diags in answer["results"].items():
        ds = [Diagnostic(**d) for d in diags]
        out[name] = [d for d in ds if d.is_error] if errors_only else ds
    return out


def format_diagnostics(name: str, text: str, diagnostics: list[Diagnostic]) -> str:
    """A readable report for an assertion message."""
    lines = [f"{name}: {len(diagnostics)} diagnostic(s)"]
    lines += [f"  {d}\n    ...{d.excerpt(text)}..." for d in diagnostics]
    return "\n".join(lines)
