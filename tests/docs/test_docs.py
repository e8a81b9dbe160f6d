"""README.md is the front door and docs/*.md the manual; these tests keep both honest against the code."""

from __future__ import annotations

import argparse
import json
import re
import typing
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from queries.catalogue import load_catalogue
from queries.config import Settings, SourceSettings

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README_PATH = ROOT / "README.md"
README = README_PATH.read_text()
README_MAX_BYTES = 15 * 1024


def doc(name: str) -> str:
    return (DOCS / name).read_text()


def manual_pages() -> list[Path]:
    return [README_PATH, *sorted(DOCS.glob("*.md"))]


# ---- settings -------------------------------------------------------------------------------------


def setting_fields(model: type[BaseModel] = Settings, prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    """Every leaf setting as (dotted path, field); `[]` marks a list of tables (`alerts.rules[].name`)."""
    for name, field in model.model_fields.items():
        ann = field.annotation
        args = typing.get_args(ann)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from setting_fields(ann, f"{prefix}{name}.")
        elif typing.get_origin(ann) is list and args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
            yield from setting_fields(args[0], f"{prefix}{name}[].")
        else:
            yield prefix + name, field


def setting_paths(model: type[BaseModel] = Settings, prefix: str = "") -> list[str]:
    return [path for path, _ in setting_fields(model, prefix)]


def table_rows(text: str) -> dict[str, list[str]]:
    """Markdown table rows whose first cell is one code span: name -> the other cells."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^\| `([^`]+)` \|(.*)\|\s*$", line)
        if m:
            rows[m.group(1)] = [c.strip() for c in m.group(2).split(" | ")]
    return rows


def documented_default(field: FieldInfo) -> str | None:
    """How the configuration table writes a field's default; None when the table is free to describe
    it (a default computed from other settings, written as a `<placeholder>`)."""
    if field.default is PydanticUndefined and field.default_factory is None:
        return "–"  # required
    value: Any = field.get_default(call_default_factory=True)
    if value is None:
        return None
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int | float):
        return f"`{int(value)}`" if float(value).is_integer() else f"`{value}`"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    if isinstance(value, list | dict):
        return f"`{json.dumps(value)}`"
    return f"`{value}`"


def test_every_setting_is_documented() -> None:
    paths = setting_paths()
    assert len(paths) > 50
    text = doc("configuration.md")
    missing = [p for p in paths if f"`{p}`" not in text]
    assert not missing, f"settings missing from docs/configuration.md: {missing}"
    stale = sorted(set(table_rows(text)) - set(paths))
    assert not stale, f"docs/configuration.md documents settings that no longer exist: {stale}"


def test_every_documented_default_is_the_code_default() -> None:
    rows = table_rows(doc("configuration.md"))
    wrong = []
    for path, field in setting_fields():
        written = rows[path][0]
        want = documented_default(field)
        # None: no default, or one computed from another setting (a `<placeholder>`)
        ok = (written == "–" or "<" in written) if want is None else written == want
        if not ok:
            wrong.append(f"{path}: docs say {written}, code says {want or 'None'}")
    assert not wrong, "defaults in docs/configuration.md differ from queries/config.py:\n" + "\n".join(wrong)


def test_every_source_setting_is_in_the_toml_example() -> None:
    text = doc("queries.md")
    for field in SourceSettings.model_fields:
        assert re.search(rf"^#? ?{field} = ", text, re.MULTILINE), f"[source] {field} is not in docs/queries.md"


# ---- the catalogue and the alert kinds ------------------------------------------------------------


def duration(value: timedelta) -> str:
    """A duration as the catalogue table writes it: 0, 5m, 1h, 7d."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s" if seconds else "0"


def test_every_catalogue_query_is_documented_as_its_header_says() -> None:
    text = doc("queries.md")
    catalogue = load_catalogue()
    missing = [name for name in catalogue if f"`{name}`" not in text]
    assert not missing, f"catalogue queries missing from docs/queries.md: {missing}"
    rows = table_rows(text)
    stale = sorted(set(rows) - set(catalogue))
    assert not stale, f"docs/queries.md lists queries that no longer exist: {stale}"
    for name, spec in catalogue.items():
        assert name in rows, f"{name} has no row in the catalogue table of docs/queries.md"
        returns, _params, cache, range_ = rows[name][1:5]
        assert returns == ", ".join(spec.columns), f"{name}: the documented columns differ from the file's header"
        assert (cache, range_) == (duration(spec.cache), duration(spec.range)), f"{name}: cache or range differ"


def test_every_alert_kind_is_documented() -> None:
    from alerts.rules import THRESHOLDS

    rows = table_rows(doc("alerts.md"))
    missing = [kind for kind in THRESHOLDS if kind not in rows]
    assert not missing, f"alert kinds missing from the table in docs/alerts.md: {missing}"
    stale = sorted(k for k in rows if re.fullmatch(r"[a-z0-9]+_[a-z0-9_]+", k) and k not in THRESHOLDS)
    assert not stale, f"docs/alerts.md lists alert kinds that no longer exist: {stale}"


# ---- the README -----------------------------------------------------------------------------------


def test_readme_is_a_front_door() -> None:
    size = len(README.encode())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; keep it under {README_MAX_BYTES}"


def test_quick_start_has_exactly_the_two_commands_and_a_screenshot() -> None:
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^make \w+", quick, flags=re.M)
    assert commands == ["make demo", "make test"]
    assert "docs/screenshots/overview.png" in README
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README):
        assert (ROOT / image).exists(), image


def test_the_manual_links_every_page() -> None:
    manual = README.split("## Manual", 1)[1].split("\n## ", 1)[0]
    pages = [p.name for p in DOCS.glob("*.md")] + ["architecture.md"]
    missing = [p for p in sorted(set(pages)) if f"(docs/{p})" not in manual]
    assert not missing, f"the README's Manual section does not link {missing}"
    assert "(bench/README.md)" in manual


def cli_leaves(parser: argparse.ArgumentParser, prefix: str = "aoai-lens") -> Iterator[tuple[str, str]]:
    """(full command, its help text) for every leaf subcommand."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                command = f"{prefix} {name}"
                if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
                    yield from cli_leaves(sub, command)
                else:
                    yield command, str(helps[name])


def test_readme_command_table_is_the_cli_help() -> None:
    from dashboard.cli import build_parser

    expected = set(cli_leaves(build_parser()))
    assert len(expected) > 10
    documented = {
        (m.group(1), m.group(2).strip())
        for m in re.finditer(r"^\| `(aoai-lens[^`]*)` \| (.*) \|\s*$", README, flags=re.M)
    }
    assert documented == expected, (
        f"missing from the README: {sorted(expected - documented)}; not in the CLI: {sorted(documented - expected)}"
    )


def test_readme_exit_codes_are_the_codes() -> None:
    from queries.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_USAGE

    line = next(x for x in README.splitlines() if x.startswith("Exit codes"))
    assert f"{EXIT_OK} success" in line
    assert f"{EXIT_FAILED} the operation failed" in line
    assert f"{EXIT_USAGE} bad usage or configuration" in line


# ---- links ----------------------------------------------------------------------------------------


def prose(text: str) -> str:
    """The text without fenced code blocks and code spans, where brackets are code, not links."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def relative_links(text: str) -> list[str]:
    targets = re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", prose(text))
    return [t for t in targets if not re.match(r"^(https?:|mailto:|#)", t)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a page's headings (headings inside fenced code are not headings)."""
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S)
    return {slug(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def test_relative_links_point_to_existing_files() -> None:
    # docs/architecture.md, which README.md and docs/development.md link, is written separately and is
    # checked like every other target: until it exists, this is the one test that fails.
    broken = sorted(
        {
            f"{page.relative_to(ROOT)} -> {target}"
            for page in manual_pages()
            for target in relative_links(page.read_text())
            if not (page.parent / target.split("#", 1)[0]).resolve().exists()
        }
    )
    assert not broken, f"links to missing files: {broken}"


@pytest.mark.parametrize("page", manual_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_anchors_point_to_existing_headings(page: Path) -> None:
    broken = []
    text = page.read_text()
    for target in [*relative_links(text), *re.findall(r"\]\((#[^)\s]+)\)", prose(text))]:
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        if anchor and path.suffix == ".md" and path.exists() and anchor not in anchors(path):
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} links to missing headings: {broken}"


# ---- numbers --------------------------------------------------------------------------------------


def test_the_forecast_is_described_as_the_code_computes_it() -> None:
    from queries.cost.forecast import RUN_RATE_DAYS

    assert f"last {RUN_RATE_DAYS} complete days" in doc("cost.md")
    assert f"last {RUN_RATE_DAYS} complete days" in doc("alerts.md")
    for page in manual_pages():
        assert "elapsed share" not in page.read_text(), f"{page.name} describes the old linear forecast"


def test_quoted_prices_are_the_bundled_snapshot(tmp_path: Path) -> None:
    from queries.cost.prices import PriceBook
    from queries.cost.prices import load_catalogue as load_prices

    catalogue = load_prices(tmp_path)  # an empty data_dir: the bundled snapshot only
    version, fetched = re.search(r"azure-genai-prices (\S+) \(fetched (\d{4}-\d\d-\d\d)\)", catalogue.label).groups()
    book = PriceBook(catalogue)
    text = doc("cost.md")
    assert f"`azure-genai-prices` ({version})" in text and f"fetched {fetched}" in text

    def price(sku: str, region: str) -> float:
        p = book.lookup("gpt-4o", "2024-11-20", sku, region)
        assert p is not None
        value = p.input_per_1m if p.input_per_1m is not None else p.ptu_per_hour
        assert value is not None
        return value

    eastus, sweden = price("Standard", "eastus"), price("Standard", "swedencentral")
    assert f"input costs ${eastus:.2f} per 1M tokens in eastus and ${sweden:g} in swedencentral" in text
    ptu = {sku: price(sku, "eastus") for sku in ("GlobalProvisionedManaged", "DataZoneProvisionedManaged")}
    ptu["ProvisionedManaged"] = price("ProvisionedManaged", "eastus")
    quoted = (
        f"in eastus: ${ptu['GlobalProvisionedManaged']:.2f} Global, ${ptu['DataZoneProvisionedManaged']:.2f} Data Zone, "
        f"${ptu['ProvisionedManaged']:.2f} Regional"
    )
    assert quoted in text


CHECKED_DOLLARS = {"$0", "$2.75", "$3.025", "$1.00", "$1.10", "$2.00"}  # test_quoted_prices_are_the_bundled_snapshot


def test_no_unchecked_demo_numbers() -> None:
    """Costs, budgets and PTU counts of the demo world change with the data: the docs do not quote them
    unless a test checks them (the prices above)."""
    for page in manual_pages():
        text = page.read_text()
        dollars = set(re.findall(r"\$\d[\d,]*(?:\.\d+)?", text)) - CHECKED_DOLLARS
        assert not dollars, f"{page.name} quotes unchecked amounts: {sorted(dollars)}"
        ptus = re.findall(r"\b\d+[- ]PTUs?\b", text)
        assert not ptus, f"{page.name} quotes PTU counts: {ptus}"


def test_robustness_names_real_tests() -> None:
    names = set(re.findall(r"`(test_[a-z0-9_]+)`", doc("robustness.md")))
    assert names
    defined = {
        m for f in (ROOT / "tests").rglob("test_*.py") for m in re.findall(r"^def (test_\w+)", f.read_text(), re.M)
    }
    missing = sorted(names - defined)
    assert not missing, f"docs/robustness.md names tests that do not exist: {missing}"
