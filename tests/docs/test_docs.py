"""The README is an operations manual that the tests keep honest."""

from __future__ import annotations

import re
import runpy
import typing
from pathlib import Path

from pydantic import BaseModel

from queries.catalogue import load_catalogue
from queries.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def setting_paths(model: type[BaseModel] = Settings, prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        args = typing.get_args(ann)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += setting_paths(ann, f"{prefix}{name}.")
        elif typing.get_origin(ann) is list and args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
            out += setting_paths(args[0], f"{prefix}{name}[].")
        else:
            out.append(prefix + name)
    return out


def test_readme_is_assembled_from_its_sections() -> None:
    build = runpy.run_path(str(ROOT / "docs" / "build_readme.py"))["build"]
    assert build() == README, "README.md is out of date: run `python docs/build_readme.py`"


def test_every_setting_is_documented() -> None:
    paths = setting_paths()
    assert len(paths) > 50
    missing = [p for p in paths if f"`{p}`" not in README]
    assert not missing, f"settings missing from the README's configuration table: {missing}"


def test_every_catalogue_query_is_documented() -> None:
    missing = [name for name in load_catalogue() if f"`{name}`" not in README]
    assert not missing


def test_quick_start_has_exactly_the_two_commands_and_a_screenshot() -> None:
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^make \w+", quick, flags=re.M)
    assert commands == ["make demo", "make test"]
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README):
        assert (ROOT / image).exists(), image
    assert "docs/screenshots/overview.png" in README
