"""The reference data's CSV reading, shared by the lists (`loader`) and the credentials."""

from __future__ import annotations

import csv
from collections.abc import Iterator


def csv_rows(
    text: str, name: str, required: tuple[str, ...], error: type[Exception]
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV text, comments and blank lines skipped, values stripped;
    `error(message)` naming the file and line on a missing header, column or value."""
    numbered = [
        (n, line)
        for n, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not numbered:
        raise error(f"{name}: no header row")
    reader = csv.reader(line for _, line in numbered)
    header = [h.strip() for h in next(reader)]
    missing = [c for c in required if c not in header]
    if missing:
        raise error(f"{name}: header lacks column(s) {', '.join(missing)}")
    for (line, _), values in zip(numbered[1:], reader, strict=True):
        if len(values) != len(header):
            raise error(f"{name}:{line}: {len(values)} fields, the header has {len(header)}")
        row = {h: v.strip() for h, v in zip(header, values, strict=True)}
        empty = [c for c in required if not row[c]]
        if empty:
            raise error(f"{name}:{line}: empty {', '.join(empty)}")
        yield line, row
