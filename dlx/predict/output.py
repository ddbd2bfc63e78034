"""Where predictions go: a CSV or JSON-lines file written as the batches come (and in place only once complete), or a
table on the terminal for a few inputs."""
from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.table import Table

from dlx import tables
from dlx.atomic import replacing
from dlx.errors import DlxError
from dlx.run.records import check_output_file

Row = dict[str, Any]
FORMATS = (".csv", ".jsonl")


def flat(row: Row) -> dict[str, Any]:
    """A row as the columns of a CSV: the top k as class_i and probability_i, several values as value_i."""
    flattened = {k: v for k, v in row.items() if k not in ("top_k", "value")}
    for i, (name, p) in enumerate(row.get("top_k", []), start=1):
        flattened[f"class_{i}"], flattened[f"probability_{i}"] = name, f"{p:.6g}"
    if "probability" in flattened:
        flattened["probability"] = f"{flattened['probability']:.6g}"
    value = row.get("value")
    if isinstance(value, list):
        flattened.update({f"value_{i}": f"{v:.6g}" for i, v in enumerate(value, start=1)})
    elif value is not None:
        flattened["value"] = f"{value:.6g}"
    return flattened


@contextmanager
def file_sink(path: Path) -> Iterator[Callable[[list[Row]], None]]:
    """A function that writes rows to `path` (.csv or .jsonl) as they come; the file appears when the block ends
    without an error, and an earlier file of that name stays until then."""
    if path.suffix not in FORMATS:
        raise DlxError(f"--out {path}: write predictions to a .csv or a .jsonl file")
    check_output_file(path)
    with replacing(path, "w") as f:
        writer: list[csv.DictWriter] = []

        def write(rows: list[Row]) -> None:
            if path.suffix == ".jsonl":
                f.writelines(json.dumps(row) + "\n" for row in rows)
                return
            if not rows:
                return
            if not writer:  # the columns of the first row: every row has the same
                writer.append(csv.DictWriter(f, fieldnames=list(flat(rows[0]))))
                writer[0].writeheader()
            writer[0].writerows(map(flat, rows))

        yield write


def table(rows: list[Row], title: str) -> Table:
    """A few predictions for the terminal, as dlx.tables shows numbers; the top k in one column as 'class p'."""
    columns = [c for c in ("input", "target", "predicted", "probability", "top_k", "value") if rows and c in rows[0]]
    return tables.table([tables.Column(c.replace("_", " "), text=c not in ("probability", "value"), fold=True)
                         for c in columns], ([_cell(row[c]) for c in columns] for row in rows), title)


def _cell(value: Any) -> Any:
    if isinstance(value, list):  # the top k as 'class p', or several values
        return ", ".join(f"{v[0]} {tables.number(v[1])}" if isinstance(v, list) else f"{v:.4g}" for v in value)
    return value
