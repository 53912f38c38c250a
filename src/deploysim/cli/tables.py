"""Tables that read well anywhere: a terminal, a pipe, an 80-column CI log.

On a terminal wide enough for the whole table, Rich draws it. Anywhere else (output piped, a
log file, a narrow terminal) the table is printed as plain aligned text; when it is wider than
the page it is cut into column groups that each fit, the key columns (the first ``keys``)
repeated in every group, so no cell is ever squeezed to nothing or cut. Long cells wrap within
their column only when a single column is wider than the page.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

GAP = "  "


@dataclass
class PlainTable:
    title: str
    columns: Sequence[str]
    #: columns aligned to the right (numbers)
    right: set[str] = field(default_factory=set)
    #: leading columns repeated in every column group
    keys: int = 1
    rows: list[list[str]] = field(default_factory=list)

    def add_row(self, *cells: object) -> None:
        self.rows.append(["" if c is None else str(c) for c in cells])

    # -- rendering ------------------------------------------------------------------------
    def widths(self) -> list[int]:
        return [max([len(c)] + [len(r[i]) for r in self.rows]) for i, c in enumerate(self.columns)]

    def total_width(self) -> int:
        w = self.widths()
        return sum(w) + len(GAP) * (len(w) - 1)

    def plain_lines(self, width: int) -> list[str]:
        """The table as text lines of at most ``width`` characters (where cells allow)."""
        widths = self.widths()
        keys = list(range(min(self.keys, len(self.columns))))
        key_w = sum(widths[i] for i in keys) + len(GAP) * len(keys)
        groups: list[list[int]] = []
        current: list[int] = []
        used = key_w
        for i in range(len(keys), len(self.columns)):
            need = widths[i] + len(GAP)
            if current and used + need > width:
                groups.append(current)
                current, used = [], key_w
            current.append(i)
            used += need
        groups.append(current)
        lines = [self.title] if self.title else []
        for g, group in enumerate(groups):
            cols = keys + group
            if g:
                lines.append("")
            if len(groups) > 1:
                lines.append(f"({g + 1}/{len(groups)})")
            lines.extend(self._block(cols, widths, width))
        return lines

    def _block(self, cols: list[int], widths: list[int], page: int) -> list[str]:
        w = {i: widths[i] for i in cols}
        overflow = sum(w.values()) + len(GAP) * (len(cols) - 1) - page
        if overflow > 0:  # one very wide column: wrap the widest one
            widest = max(cols, key=lambda i: w[i])
            w[widest] = max(12, w[widest] - overflow)
        out = self._line([self.columns[i] for i in cols], cols, w)
        out.append(GAP.join("-" * w[i] for i in cols).rstrip())
        for row in self.rows:
            out.extend(self._line([row[i] for i in cols], cols, w))
        return out

    def _line(self, cells: list[str], cols: list[int], w: dict[int, int]) -> list[str]:
        wrapped = [textwrap.wrap(c, w[i]) or [""] if len(c) > w[i] else [c] for c, i in zip(cells, cols,
                                                                                            strict=True)]
        height = max(len(x) for x in wrapped)
        lines = []
        for k in range(height):
            parts = []
            for part, i in zip(wrapped, cols, strict=True):
                text = part[k] if k < len(part) else ""
                parts.append(text.rjust(w[i]) if self.columns[i] in self.right else text.ljust(w[i]))
            lines.append(GAP.join(parts).rstrip())
        return lines

    def rich(self) -> Table:
        table = Table(title=self.title or None)
        for c in self.columns:
            table.add_column(c, justify="right" if c in self.right else "left", no_wrap=True)
        for row in self.rows:
            table.add_row(*row)
        return table


def page_width(console: Console) -> int:
    """The width to lay text out for: the terminal's, else ``COLUMNS``, else 80."""
    if console.is_terminal:
        return console.width
    try:
        return max(40, int(os.environ.get("COLUMNS", "80")))
    except ValueError:
        return 80


def emit(console: Console, table: PlainTable) -> None:
    """Print ``table`` with Rich when it fits a terminal, else as plain text."""
    width = page_width(console)
    if console.is_terminal and table.total_width() + 3 * len(table.columns) + 1 <= width:
        console.print(table.rich())
        return
    for line in table.plain_lines(width):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
