"""The JSON-lines input of `validate` and `produce`: a file or `-` (stdin), read line by line.

Blank lines are skipped, as `replay` skips them; line numbers count every line of the file, so
a reported line is the line an editor shows. A file that cannot be opened or read is a usage
error (exit 2) naming it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from types import TracebackType
from typing import BinaryIO, Self

from claimstream.cli.exits import CommandError


class JsonLines:
    """`with JsonLines(path) as lines: for number, line in lines: ...` (`line` stripped)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = "<stdin>" if path == "-" else path
        self.total: int | None = None
        self.consumed = 0
        self._file: BinaryIO | None = None

    def __enter__(self) -> Self:
        if self.path == "-":
            self._file = sys.stdin.buffer
            return self
        try:
            self._file = open(self.path, "rb")
            self.total = os.fstat(self._file.fileno()).st_size
        except OSError as exc:
            raise CommandError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._file is not None and self.path != "-":
            self._file.close()
        self._file = None

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        source = self._file
        if source is None:
            raise RuntimeError("JsonLines used outside `with`")
        number = 0
        while True:
            try:
                line = source.readline()
            except OSError as exc:
                raise CommandError(
                    f"cannot read {self.name} after line {number}: {exc.strerror or exc}"
                ) from None
            if not line:
                return
            number += 1
            self.consumed += len(line)
            stripped = line.strip()
            if stripped:
                yield number, stripped
