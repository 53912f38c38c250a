"""Parent side of parallel sampling: which sources are read in spans, running the span tasks,
and putting their results together.

A plain (uncompressed) JSONL source of at least a quarter of ``span_bytes`` is cut at line
boundaries into the smallest power of two (at least 2) of spans of at most ``span_bytes``
(:func:`span_count`; a power of two spreads evenly over 2, 4, 8... workers). The cut depends on
the file alone, so the sample does too, whatever the number of worker processes running the
spans (one worker runs them here, one after the other). Everything else (gzip, JSON
documents, Parquet, small files) is read in this process as one more part of the stream.
Combining: per source, counts are summed and quarantined rows replayed into the source's
quarantine log with file-wide line numbers; per stratum, the parts' samples are merged with
:func:`~deploysim.sample.selection.merge_parts`.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from array import array
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson

from deploysim.records import Quarantined
from deploysim.sample.config import SampleConfig
from deploysim.sample.selection import TurnSelector, merge_parts, seeded_generator
from deploysim.sample.spans import (
    PACKED_FIELDS,
    BuildItem,
    SpanResult,
    SpanTask,
    count_span,
    file_fingerprint,
    select_span,
)
from deploysim.sources.config import SourceConfig
from deploysim.sources.containers import open_source
from deploysim.sources.formats.base import FormatModule
from deploysim.sources.quarantine import QuarantineLog
from deploysim.sources.reader import SourceReader, SourceStats, quarantine_file
from deploysim.sources.shards import ByteSpan, plan_spans

#: a plain JSONL source is read in spans of at most this size (in one piece below a quarter of it)
SPAN_BYTES = 512 << 20


@dataclass(frozen=True)
class SpanPlan:
    module: FormatModule
    spans: list[ByteSpan]
    fingerprint: tuple[int, int]  # (size, mtime_ns) when planned; rows are read back at offsets


def available_cpus() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def span_count(size: int, span_bytes: int) -> int:
    """1 below ``span_bytes / 4``, else the smallest power of two >= 2 with spans <= ``span_bytes``."""
    if 4 * size < span_bytes:
        return 1
    return max(2, 1 << max(0, math.ceil(math.log2(size / span_bytes))))


def plan_source(src: SourceConfig, formats: Sequence[FormatModule], span_bytes: int) -> SpanPlan | None:
    """Spans of ``src`` if it is a plain JSONL file large enough (:func:`span_count`) whose
    format module a worker can import; None means: read it in this process."""
    if not src.path.is_file():
        return None  # the reader reports it
    count = span_count(src.path.stat().st_size, span_bytes)
    if count < 2:
        return None
    opened = open_source(src.path, src.container)
    opened.close()
    if (opened.container, opened.compression) != ("jsonl", "none"):
        return None
    module = SourceReader(src, formats=formats).detect_format()
    if module is None or importable_name(module) is None:
        return None
    fingerprint = file_fingerprint(src.path)
    spans = plan_spans(src.path, count)
    return SpanPlan(module, spans, fingerprint) if len(spans) > 1 else None


def importable_name(module: FormatModule) -> str | None:
    """The name a worker process imports ``module`` by (None for a module made at run time)."""
    return getattr(module, "__name__", None) if getattr(module, "__spec__", None) is not None else None


def new_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes started with ``spawn`` (safe whatever threads this process runs)."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def span_tasks(sources: Sequence[SourceConfig], plans: Mapping[int, SpanPlan], *, sample: SampleConfig,
               quotas: dict[str, int] | None, need_conversations: bool,
               quarantine_root: Path | None) -> dict[int, list[SpanTask]]:
    """A task per span of every planned source (quarantined rows under ``quarantine_root``)."""
    tasks: dict[int, list[SpanTask]] = {}
    for i, plan in plans.items():
        src = sources[i].model_copy(update={"format": plan.module.NAME})
        tasks[i] = [SpanTask(source=src, source_index=i, module=importable_name(plan.module) or "", span=span,
                             sample=sample, quotas=quotas, need_conversations=need_conversations,
                             quarantine_dir=_span_dir(quarantine_root, i, span))
                    for span in plan.spans]
    return tasks


def _span_dir(root: Path | None, source_index: int, span: ByteSpan) -> Path | None:
    return None if root is None else root / f"{source_index}-{span.index}"


def run_spans(pool: Executor | None, kind: Literal["count", "select"],
              tasks: Mapping[int, list[SpanTask]]) -> Callable[[], dict[int, list[SpanResult]]]:
    """Submit every task now (to the pool; in this process they run when the results are
    asked for); the returned function gives the results per source, in span order."""
    fn = count_span if kind == "count" else select_span
    if pool is None:
        done: dict[int, list[SpanResult]] = {}

        def run_here() -> dict[int, list[SpanResult]]:
            if not done:
                done.update({i: [fn(t) for t in ts] for i, ts in tasks.items()})
            return done

        return run_here
    futures = {i: [pool.submit(fn, t) for t in ts] for i, ts in tasks.items()}
    return lambda: {i: [f.result() for f in fs] for i, fs in futures.items()}


def first_lines(results: Sequence[SpanResult]) -> list[int]:
    """File line number of each span's line 1."""
    firsts, line = [], 1
    for r in results:
        firsts.append(line)
        line += r.lines
    return firsts


def span_stats(src: SourceConfig, plan: SpanPlan, results: Sequence[SpanResult], quarantine_dir: Path | None,
               sink: Callable[[list[Quarantined]], Any] | None) -> SourceStats:
    """The source's counts, and its quarantined rows (file-wide lines) in its quarantine log."""
    path = quarantine_file(quarantine_dir, src.label) if quarantine_dir is not None else None
    log = QuarantineLog(src.label, path, sink)
    try:
        for r, first in zip(results, first_lines(results), strict=True):
            if r.quarantine_file is not None:
                with r.quarantine_file.open("rb") as f:
                    for raw in f:
                        row = orjson.loads(raw)
                        log.add(row["line"] + first - 1, row["reason"], row["excerpt"])
    finally:
        log.close()
    if log.count != sum(r.quarantined for r in results):
        raise RuntimeError(f"{src.path}: span quarantine files do not match their counts")
    return SourceStats(
        source=src.label, path=str(src.path), format=plan.module.NAME, container="jsonl", compression="none",
        read=sum(r.read for r in results), accepted=sum(r.accepted for r in results), quarantined=log.count,
        conversations=sum(r.conversations for r in results),
        eligible_turns=sum(r.eligible_turns for r in results), bytes=plan.fingerprint[0],
        quarantine_path=str(log.written_path) if log.written_path else None, examples=log.examples)


def merge_samples(local: TurnSelector | None, spans: Mapping[int, list[SpanResult]],
                  quotas: Mapping[str, int] | None, n: int, seed: int) -> list[BuildItem]:
    """The final picks: per stratum (or once, uniform), the exact merge of the local part and
    every span's part, then the seeded output shuffle."""
    gen = seeded_generator(seed, "merge")
    local_samples = local.samples() if local is not None else {}
    chosen: list[BuildItem] = []
    for stratum in sorted(quotas) if quotas is not None else [None]:
        k = quotas[stratum] if quotas is not None and stratum is not None else n
        population, items = local_samples.get(stratum, (0, []))
        parts = [(population, len(items))]
        span_parts: list[tuple[int, int, np.ndarray]] = []  # (source index, line shift, packed rows)
        for i, results in spans.items():
            for r, first in zip(results, first_lines(results), strict=True):
                population, packed = r.samples.get(stratum, (0, _EMPTY))
                rows = np.frombuffer(packed, dtype=np.int64).reshape(-1, PACKED_FIELDS)
                parts.append((population, len(rows)))
                span_parts.append((i, first - 1, rows))
        keep = merge_parts(parts, k, gen)
        chosen.extend((*items[j][0], items[j][1], stratum) for j in keep[0].tolist())
        for (i, shift, rows), indices in zip(span_parts, keep[1:], strict=True):
            picked = rows[indices]
            picked[:, 0] += shift  # file-wide line numbers
            lines, ordinals, offsets, lengths, turns = picked.T.tolist()
            payloads = zip(offsets, lengths, strict=True)
            chosen.extend(zip(repeat(i), lines, ordinals, payloads, turns, repeat(stratum)))
    return list(map(chosen.__getitem__, seeded_generator(seed, "order").permutation(len(chosen)).tolist()))


_EMPTY: array[int] = array("q")
