"""Every table dlx prints, built one way: named columns, rows of values, and one way to write a number.

Numbers are right-aligned and floats show four decimals (a mean with its spread as `0.9312 ± 0.0041`); a value
that needs another form (a margin as the user typed it, a parameter to four significant digits) comes as a string
and is shown as given; None is an empty cell. Rich only: the commands that read run folders load no torch.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table

DECIMALS = 4


@dataclass(frozen=True)
class Column:
    name: str
    text: bool = False  # left-aligned words (names, states) rather than right-aligned numbers
    fold: bool = False  # long values wrap instead of being cut short
    style: str | None = None


def number(value: float | None, spread: float | None = None) -> str:
    """A float with DECIMALS decimals (and ± its spread); '' for None."""
    if value is None:
        return ""
    return f"{value:.{DECIMALS}f}" + (f" ± {spread:.{DECIMALS}f}" if spread is not None else "")


def seconds(value: float | None) -> str:
    """A duration to a tenth of a second: '12.3s'; '' for None."""
    return "" if value is None else f"{value:.1f}s"


def cell(value: Any) -> str:
    if isinstance(value, float):
        return number(value)
    return "" if value is None else str(value)


def table(columns: Sequence[Column | str], rows: Iterable[Sequence[Any]], title: str | None = None) -> Table:
    """A rich Table; a column given as a plain name holds numbers, except the first, which names the rows."""
    out = Table(title=title)
    for i, column in enumerate(columns):
        column = column if isinstance(column, Column) else Column(column, text=i == 0)
        out.add_column(column.name, justify="left" if column.text else "right", style=column.style,
                       overflow="fold" if column.fold else "ellipsis")
    for row in rows:
        out.add_row(*(cell(v) for v in row))
    return out
