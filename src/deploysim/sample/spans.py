"""Work done in worker processes when a large plain JSONL file is sampled in parallel.

One task per byte span of the file (:mod:`deploysim.sources.shards`): :func:`count_span`
counts strata sizes (for proportional allocation), :func:`select_span` draws that span's
part of the sample with its own :class:`TurnSelector` (the parent merges the parts exactly,
:mod:`deploysim.sample.parallel`), and :func:`build_chunk` turns a chunk of
the final picks into prefix dicts. Tasks and results are plain picklable data and the
functions are module-level, so they run under the ``spawn`` start method. A span hands back
its kept turns packed, five integers each (line, position in row, byte offset, byte length,
turn), and keeps no row bytes: a kept row is read again at its offset when it is built.

Span and build tasks pause the cyclic garbage collector while they run (in a worker, or in
this process when there is one worker): they run only this package's code, which makes no
reference cycles, and the collector's passes over the growing reservoir would otherwise cost
a good part of the run.
"""

from __future__ import annotations

import gc
import importlib
import os
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import IO, Any

import orjson

from deploysim.sample.config import SampleConfig
from deploysim.sample.eligibility import TurnLimit, candidates, make_turn_filter
from deploysim.sample.prefixes import prefix_dict
from deploysim.sample.selection import TurnSelector
from deploysim.sources.config import SourceConfig
from deploysim.sources.formats.base import FormatModule
from deploysim.sources.reader import RowConverter, SourceReader
from deploysim.sources.shards import ByteSpan

#: integers per kept turn in a packed span sample: line, position, offset, length, turn, usable turns
PACKED_FIELDS = 6
#: where a kept row's bytes are: the bytes themselves, or (offset, length) in its file
Payload = bytes | tuple[int, int]
#: a pick to build: (source index, line, position in row, payload, turn, stratum, the
#: conversation's usable turns before the cap)
BuildItem = tuple[int, int, int, Payload, int, "str | None", int]


@dataclass(frozen=True)
class SpanTask:
    source: SourceConfig  # ``format`` set to the format detected on the whole file
    source_index: int
    module: str  # importable name of the format module
    span: ByteSpan
    sample: SampleConfig
    quotas: dict[str, int] | None
    need_conversations: bool
    quarantine_dir: Path | None  # where the span's quarantined rows go (line numbers within the span)
    capacity: int | None = None  # reservoir size of an unstratified sample (None: sample.n)
    attempt: int = 0  # 1 when the span is sampled again with a larger reservoir

    @property
    def part(self) -> str:
        """Name of the span's random streams: fixed by the file, not by the worker running it."""
        retry = f"retry{self.attempt}/" if self.attempt else ""
        return f"source{self.source_index}/span{self.span.index}/{retry}"


@dataclass
class SpanResult:
    span: ByteSpan
    lines: int  # physical lines in the span: the next span's line numbers start after them
    read: int
    accepted: int
    quarantined: int
    conversations: int
    eligible_turns: int
    quarantine_file: Path | None
    sizes: dict[str, int] = field(default_factory=dict)  # candidates per stratum (counting pass)
    samples: dict[str | None, tuple[int, array[int]]] = field(default_factory=dict)  # stratum -> (N, packed)
    outside: int = 0
    capacity: int = 0  # reservoir size of the unstratified sample: it holds min(capacity, N) turns
    too_long: int = 0  # turns not eligible because their prefix exceeds sample.max_prefix_messages


def _without_cyclic_gc(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``fn`` with the cyclic collector paused (restored afterwards)."""

    @wraps(fn)
    def run(*args: Any) -> Any:
        with _gc_paused():
            return fn(*args)

    return run


@contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _reader(task: SpanTask) -> SourceReader:
    module: Any = importlib.import_module(task.module)
    return SourceReader(task.source, formats=(module,), quarantine_dir=task.quarantine_dir,
                        need_conversations=task.need_conversations, span=task.span, row_offsets=True)


def _result(reader: SourceReader, span: ByteSpan) -> SpanResult:
    st = reader.stats
    return SpanResult(span=span, lines=reader.lines, read=st.read, accepted=st.accepted,
                      quarantined=st.quarantined, conversations=st.conversations,
                      eligible_turns=st.eligible_turns,
                      quarantine_file=Path(st.quarantine_path) if st.quarantine_path else None)


@_without_cyclic_gc
def count_span(task: SpanTask) -> SpanResult:
    """Candidate turns per stratum in the span (after filters and cap)."""
    cfg = task.sample
    cap = cfg.cap_per_conversation
    reader = _reader(task)
    sizes: Counter[str] = Counter()
    limit = TurnLimit(cfg.max_prefix_messages)
    for _, _, _, usable, stratum in candidates(reader, make_turn_filter(cfg), cfg.stratify_by, limit):
        sizes[stratum or ""] += len(usable) if cap is None else min(len(usable), cap)
    result = _result(reader, task.span)
    result.sizes = dict(sizes)
    return result


@_without_cyclic_gc
def select_span(task: SpanTask) -> SpanResult:
    """The span's part of the sample: per stratum, its candidate count and a uniform sample
    of min(quota, count) of its candidates, packed (unstratified: min(capacity, count))."""
    cfg = task.sample
    reader = _reader(task)
    capacity = cfg.n if task.capacity is None else task.capacity
    selector = TurnSelector(n=capacity, seed=cfg.seed, cap=cfg.cap_per_conversation, quotas=task.quotas,
                            part=task.part)
    add, keep = selector.add, selector.keep
    offer = selector.offer_uncapped if selector.plain else selector.offer
    offset_of, turn_filter = reader.row_offset, make_turn_filter(cfg)
    limit = TurnLimit(cfg.max_prefix_messages)
    cut, max_messages = limit.cut, limit.max_messages
    for line, payload, convs, turns in reader:
        if convs is None:  # scan-vouched (the hot path): plain text, no filter or stratum to apply
            for ordinal, usable in enumerate(turns):
                if usable and usable[-1] >= max_messages:
                    usable = cut(usable)
                picks = offer(len(usable))  # the ref is made only for the few rows picked
                if picks:
                    keep(picks, (line, ordinal, offset_of(line), len(payload)), usable)
            continue
        for _, ordinal, _, usable, stratum in candidates([(line, payload, convs, turns)], turn_filter,
                                                         cfg.stratify_by, limit):
            add((line, ordinal, offset_of(line), len(payload)), usable, stratum)
    result = _result(reader, task.span)
    result.outside, result.capacity, result.too_long = selector.outside, capacity, limit.dropped
    for stratum, (population, items) in selector.samples().items():
        packed = array("q")
        for ref, turn, usable in items:
            packed.extend(ref)
            packed.append(turn)
            packed.append(usable)
        result.samples[stratum] = (population, packed)
    return result


# -- building prefixes ----------------------------------------------------------------------
@dataclass(frozen=True)
class BuildSource:
    """What building a source's picks needs; ``fingerprint`` (size, mtime_ns) is checked
    before rows are read back at their offsets."""

    cfg: SourceConfig
    module: str
    fingerprint: tuple[int, int] | None


def file_fingerprint(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


class PrefixBuilder:
    """Prefix dicts for picks; rows kept as ``(offset, length)`` are read back from their file."""

    def __init__(self, sources: Sequence[BuildSource],
                 modules: Sequence[FormatModule | None] | None = None) -> None:
        self.sources = list(sources)
        if modules is None:
            modules = [importlib.import_module(s.module) if s.module else None for s in sources]
        self.converters = [RowConverter(m, s.cfg) if m is not None else None
                           for s, m in zip(sources, modules, strict=True)]
        self._files: dict[int, IO[bytes]] = {}
        #: the last row converted: several picks from one (long) conversation convert it once
        self._last: tuple[int, int, list[dict[str, Any]]] | None = None

    def build(self, item: BuildItem) -> dict[str, Any]:
        source_index, line, ordinal, payload, turn, stratum, usable = item
        last = self._last
        if last is not None and last[0] == source_index and last[1] == line:
            convs = last[2]
        else:
            if type(payload) is not bytes:
                payload = self._read(source_index, *payload)
            convs = self.converters[source_index](payload, line)  # type: ignore[misc]
            self._last = (source_index, line, convs)
        return prefix_dict(convs[ordinal], turn, stratum, usable)

    def _read(self, source_index: int, offset: int, length: int) -> bytes:
        f = self._files.get(source_index)
        if f is None:
            src = self.sources[source_index]
            f = self._files[source_index] = src.cfg.path.open("rb", buffering=0)
            if src.fingerprint is not None and file_fingerprint(src.cfg.path) != src.fingerprint:
                raise ValueError(f"{src.cfg.path} changed while it was being sampled; sample it again")
        if _pread is not None:
            return _pread(f.fileno(), length, offset)
        f.seek(offset)
        return f.read(length)

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()


_pread: Callable[[int, int, int], bytes] | None = getattr(os, "pread", None)


@dataclass(frozen=True)
class BuildTask:
    sources: tuple[BuildSource, ...]
    items: list[BuildItem]


@_without_cyclic_gc
def build_chunk(task: BuildTask) -> list[bytes]:
    """The prefixes of ``task.items`` as JSON, in their order (one document each, so that
    neither side holds a chunk's worth of dicts: they would only feed the cyclic GC)."""
    builder = PrefixBuilder(task.sources)
    dumps = orjson.dumps
    try:
        return [dumps(builder.build(item)) for item in task.items]
    finally:
        builder.close()
