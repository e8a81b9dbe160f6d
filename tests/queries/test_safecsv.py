"""queries/safecsv.py: CSV for people. Cells a spreadsheet would run as formulas are defused; numbers,
dates and everything else are written as pandas writes them."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest

from queries.safecsv import to_csv

FORMULAS = [
    '=HYPERLINK("https://evil.example/phish","open")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.mark.parametrize("name", FORMULAS)
def test_formula_cells_are_prefixed_with_a_quote(name: str) -> None:
    frame = pd.DataFrame({"Deployment": [name, "chat-gpt4o"], "Requests": [3, 4]})
    rows = cells(to_csv(frame))
    assert rows[0] == ["Deployment", "Requests"]
    assert rows[1][0].startswith("'") and rows[1][0].lstrip("'").replace("\\|", "|") == name
    assert rows[2] == ["chat-gpt4o", "4"]


def test_numbers_stay_numbers() -> None:
    frame = pd.DataFrame(
        {
            "Cost": [-3.5, 1e-05, -1e-05],
            "Delta": pd.array([-2, None, 7], dtype="Int64"),
            "AsText": ["-3.5", "+4", "-1,234.5"],  # numbers held as text: a plain number is no formula
        }
    )
    rows = cells(to_csv(frame))
    assert rows[1] == ["-3.5", "-2", "-3.5"]
    assert rows[2] == ["1e-05", "", "'+4"]  # "+4" is not a plain number to defusedcsv: quoted, still reads 4
    assert rows[3] == ["-1e-05", "7", "-1,234.5"]
    back = pd.read_csv(io.StringIO(to_csv(frame[["Cost", "Delta"]])))
    assert back["Cost"].tolist() == [-3.5, 1e-05, -1e-05]


def test_a_float_format_keeps_negative_amounts_as_numbers() -> None:
    frame = pd.DataFrame({"Team": ["-support", "growth"], "Cost": [-3.5, 2.0]})
    assert to_csv(frame, float_format="%.6f") == "Team,Cost\r\n'-support,-3.500000\r\ngrowth,2.000000\r\n"


def test_benign_frames_are_written_exactly_as_pandas_writes_them() -> None:
    frame = pd.DataFrame(
        {
            "TimeGenerated": pd.to_datetime(["2026-11-01 00:00", "2026-11-01 01:00", None], utc=True),
            "Deployment": ["chat-gpt4o", None, 'a "quoted", name'],
            "Requests": pd.array([1, None, 3], dtype="Int64"),
            "Share": [0.1 + 0.2, np.nan, 1.0],
            "Priced": [True, False, True],
            "Ok": pd.array([True, None, False], dtype="boolean"),
            "Kind": pd.Categorical(["a", "b", "a"]),
        }
    )
    crlf = {"index": False, "lineterminator": "\r\n"}
    assert to_csv(frame) == frame.to_csv(**crlf)
    assert to_csv(frame, float_format="%.6f") == frame.to_csv(float_format="%.6f", **crlf)
    empty = pd.DataFrame(columns=["a", "b"])
    assert to_csv(empty) == empty.to_csv(**crlf)


def test_a_line_break_inside_a_name_is_quoted_so_no_row_starts_with_its_tail() -> None:
    frame = pd.DataFrame({"Deployment": ["ok\r=HYPERLINK(1)", "ok\n@SUM(1)"], "Requests": [1, 2]})
    text = to_csv(frame)
    assert cells(text)[1:] == [["ok\r=HYPERLINK(1)", "1"], ["ok\n@SUM(1)", "2"]]
    assert '"ok\r=HYPERLINK(1)"' in text and '"ok\n@SUM(1)"' in text


def test_hostile_column_names_are_defused_too() -> None:
    frame = pd.DataFrame({"=cmd|' /C calc'!A0": [1]})
    assert cells(to_csv(frame))[0][0].startswith("'=")
