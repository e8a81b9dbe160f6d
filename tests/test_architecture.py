"""The house rules a linter can check: no import cycles, and no layer pulls in the one above it.

The layer and forbidden-import contracts themselves are import-linter's (`[tool.importlinter]` in
pyproject.toml, run by `make test` as `lint-imports`); this adds what it does not cover.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("queries", "alerts", "dashboard")


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the groups of modules that import each other (directly or not)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def import_graph() -> dict[str, set[str]]:
    """Every import between our modules, including the ones inside functions and under TYPE_CHECKING."""
    g = grimp.build_graph(*PACKAGES, cache_dir=None)
    ours = {m for m in g.modules if m.split(".")[0] in PACKAGES}
    return {m: {i for i in g.find_modules_directly_imported_by(m) if i in ours} for m in ours}


def test_the_tarjan_helper_finds_a_planted_cycle() -> None:
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    graph = import_graph()
    assert len(graph) > 50  # the whole program, not an empty graph
    assert strongly_connected(graph) == []


def _modules(package: str) -> list[str]:
    pkg = __import__(package)
    return [package] + [m.name for m in pkgutil.walk_packages(pkg.__path__, package + ".")]


@pytest.mark.parametrize(
    ("package", "above"), [("queries", ("alerts", "dashboard", "dash")), ("alerts", ("dashboard", "dash"))]
)
def test_importing_a_layer_pulls_in_no_upper_layer(package: str, above: tuple[str, ...]) -> None:
    """Every module of the layer imported in a fresh interpreter: nothing of the layers above it loads."""
    code = (
        "import importlib, sys\n"
        f"for m in {_modules(package)!r}:\n"
        "    importlib.import_module(m)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {above!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == ""


def test_the_dashboard_imports_no_azure_sdk_or_openai_itself() -> None:
    graph = grimp.build_graph("dashboard", cache_dir=None)
    direct = {
        i.split(".")[0]
        for m in graph.modules
        for i in graph.find_modules_directly_imported_by(m)
        if i.split(".")[0] in ("azure", "openai")
    }
    assert direct == set()
