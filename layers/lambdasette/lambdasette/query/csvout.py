"""CSV rendering: Python's csv defaults, as Datasette writes it."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from typing import Any


def cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict) and "value" in value:
        return cell(value["value"])
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            import base64

            return base64.b64encode(data).decode("ascii")
    return value


class CsvWriter:
    """Accumulates CSV text; `rows()` returns what was written since the last call."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)

    def write(self, cells: Sequence[Any]) -> None:
        self._writer.writerow([cell(c) for c in cells])

    def write_all(self, rows: Iterable[Sequence[Any]]) -> None:
        self._writer.writerows([cell(c) for c in row] for row in rows)

    def take(self) -> str:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text


def labelled(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], expanded: set[str]
) -> tuple[list[str], list[list[Any]]]:
    """Add `<col>_label` after each expanded foreign-key column."""
    header: list[str] = []
    for c in columns:
        header.append(c)
        if c in expanded:
            header.append(f"{c}_label")
    out = []
    for row in rows:
        cells: list[Any] = []
        for c, value in zip(columns, row):
            if c in expanded:
                if isinstance(value, dict):
                    cells += [value.get("value"), value.get("label")]
                else:
                    cells += [value, ""]
            else:
                cells.append(value)
        out.append(cells)
    return header, out
