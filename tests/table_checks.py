"""Checks that a command's table is aligned: every cell starts where its column's header
starts (left-aligned) or ends where it ends (right-aligned)."""

from __future__ import annotations

import re

CELL = re.compile(r"\S+(?: \S+)*")  # a run of text with single spaces inside


def cells(line: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group()) for m in CELL.finditer(line)]


def assert_aligned(text: str) -> list[list[str]]:
    """The table's rows as lists of cells (header first); fails on any misaligned cell."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) >= 2, f"no rows under a header:\n{text}"
    header = cells(lines[0])
    starts = {start for start, _, _ in header}
    ends = {end for _, end, _ in header}
    rows = [[c for _, _, c in header]]
    for line in lines[1:]:
        assert line == line.rstrip(), f"trailing blanks: {line!r}"
        row = cells(line)
        for start, end, text_ in row:
            assert start in starts or end in ends, (
                f"cell {text_!r} at {start}..{end} is under no column of\n{lines[0]}\n{line}"
            )
        rows.append([c for _, _, c in row])
    return rows
