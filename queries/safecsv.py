"""CSV for people: every CSV aoai-lens writes for someone to open (a panel's download, `query --format
csv`, `cost report --format csv|focus`) goes through `to_csv`, so a cell a spreadsheet would run as a
formula is shown as text instead.

Names in the logs (deployments, callers, API versions) are chosen by whoever calls Azure OpenAI. A cell
starting with `=`, `+`, `-` or `@` is a formula to Excel, LibreOffice and Google Sheets (`=HYPERLINK(...)`,
`@SUM(...)`, DDE `=cmd|...`), and one starting with a tab or carriage return hides such a prefix. The
cells are written by defusedcsv, which prefixes those with a single quote (as OWASP advises); tab and CR,
which defusedcsv leaves alone, get the same quote here first.

Numbers stay numbers: numeric columns are passed to the writer as numbers, which defusedcsv never
touches (a cost of -3.5 is written `-3.5`), and text that is a plain number (`-3.5` in a text column) is
left as it is too. Dates, booleans and empty cells are written as pandas writes them. Lines end in CRLF
(RFC 4180, the csv module's default).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from typing import Any

import pandas as pd
from defusedcsv import csv as defusedcsv

# what defusedcsv does not catch on its own: a leading tab or carriage return before a formula
_HIDING_PREFIXES = ("\t", "\r")


class _Formatted(float):
    """A float the csv module writes with a %-format (`float_format`), and still a number to defusedcsv."""

    fmt = "%s"

    def __str__(self) -> str:
        return self.fmt % float(self)


def _text(value: Any) -> str:
    text = str(value)
    return "'" + text if text.startswith(_HIDING_PREFIXES) else text


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _column(series: pd.Series, float_format: str | None) -> Iterable[Any]:
    kind = series.dtype.kind
    if pd.api.types.is_bool_dtype(series.dtype):
        return (None if _missing(v) else str(bool(v)) for v in series.astype(object))
    if kind in "iuf" or pd.api.types.is_numeric_dtype(series.dtype):
        values = series.astype(object)
        if float_format and kind == "f":
            fmt = type("_F", (_Formatted,), {"fmt": float_format})
            return (None if _missing(v) else fmt(v) for v in values)
        return (None if _missing(v) else v for v in values)
    if kind == "M":
        return (None if _missing(v) else str(v) for v in series.astype(object))
    # text, categories and anything else: numbers in it stay numbers, the rest is defused as text
    return (
        None if _missing(v) else v if isinstance(v, int | float) and not isinstance(v, bool) else _text(v)
        for v in series.astype(object)
    )


def to_csv(frame: pd.DataFrame, *, float_format: str | None = None) -> str:
    """`frame` as CSV text (header, no index, RFC 4180 CRLF line ends), formula cells defused.

    CRLF matters: Python's csv module quotes a cell holding a line-end character, and with `\\n` line
    ends a bare CR inside a name would go out unquoted, and a spreadsheet would start a new row there
    (with whatever follows the CR in its first cell)."""
    buffer = io.StringIO()
    writer = defusedcsv.writer(buffer)  # the excel dialect: CRLF line ends, so a CR inside a cell is quoted
    writer.writerow([_text(c) for c in frame.columns])
    columns = [_column(frame.iloc[:, i], float_format) for i in range(frame.shape[1])]
    writer.writerows(zip(*columns, strict=True))
    return buffer.getvalue()


__all__ = ["to_csv"]
