"""Byte spans of a plain JSONL file, cut at line boundaries, for reading in parallel.

A large uncompressed JSONL log is cut into spans that worker processes read independently
(:func:`open_span` gives a span the shape of any opened source). Every span starts at the
beginning of a line and ends just after a newline (or at the end of the file), so no row
straddles two spans. Rows are numbered from 1 within a span; a worker counts its span's
physical lines while reading it, and the caller adds the lines of the spans before it to get
the file's line numbers. Byte offsets are file-wide (the splitter reports each row's offset),
so a worker can hand back a row as ``(offset, length)`` instead of its bytes.
"""

from __future__ import annotations

import codecs
import io
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import BinaryIO, cast

from deploysim.sources import containers
from deploysim.sources.containers import OpenedSource

_BOM = codecs.BOM_UTF8


@dataclass(frozen=True, slots=True)
class ByteSpan:
    """Bytes ``[start, end)`` of a file; ``index`` is its position among the file's spans."""

    index: int
    start: int
    end: int


def plan_spans(path: Path, count: int) -> list[ByteSpan]:
    """About ``count`` spans of equal size: each cut at ``j·size/count`` moves forward to
    the start of the next line (a file with few, long lines can give fewer spans)."""
    size = path.stat().st_size
    cuts = [0]
    with path.open("rb") as f:
        for j in range(1, count):
            cut = _line_start_at_or_after(f, max(j * size // count, cuts[-1]), size)
            if cut > cuts[-1]:
                cuts.append(cut)
    if size > cuts[-1]:
        cuts.append(size)
    return [ByteSpan(i, a, b) for i, (a, b) in enumerate(pairwise(cuts))]


def _line_start_at_or_after(f: BinaryIO, pos: int, size: int) -> int:
    """The first offset >= ``pos`` at which a line starts (``size`` if none)."""
    if pos <= 0:
        return 0
    f.seek(pos - 1)  # a line starts at p when the byte before p is a newline
    while True:
        chunk = f.read(containers.CHUNK_BYTES)
        if not chunk:
            return size
        cut = chunk.find(b"\n")
        if cut >= 0:
            return min(pos + cut, size)
        pos += len(chunk)


class _SpanStream(io.RawIOBase):
    """Reads a file from its current position up to ``remaining`` bytes, then reports EOF."""

    def __init__(self, f: BinaryIO, remaining: int) -> None:
        self._f = f
        self._remaining = remaining

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > self._remaining:
            size = self._remaining
        data = self._f.read(size)
        self._remaining -= len(data)
        return data

    def close(self) -> None:
        self._f.close()
        super().close()


def open_span(path: Path, span: ByteSpan) -> OpenedSource:
    """The span as an opened plain JSONL source (the reader splits it like any file)."""
    f = path.open("rb")  # closed by OpenedSource.close via the span stream
    f.seek(span.start)
    stream = cast(BinaryIO, _SpanStream(f, span.end - span.start))
    head = stream.read(containers.CHUNK_BYTES)
    head_at = span.start
    if span.start == 0 and head.startswith(_BOM):
        head, head_at = head[len(_BOM):], len(_BOM)
    return OpenedSource(path, "none", "jsonl", stream, head, head_at)
