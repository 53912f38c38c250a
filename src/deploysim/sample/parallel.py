"""Parent side of parallel sampling: which sources are read in spans, running the span tasks,
and putting their results together.

A plain (uncompressed) JSONL source of at least a quarter of ``span_bytes`` is cut at line
boundaries into the smallest power of two (at least 2) of spans of at most ``span_bytes``
(:func:`span_count`; a power of two spreads evenly over 2, 4, 8... workers). The cut depends on
the file alone, so the sample does too, whatever the number of worker processes running the
spans (one worker runs them here, one after the other). Everything else (gzip, JSON
documents, Parquet, small files) is read in this process as one more part of the stream.
Combining: per source, counts are summed and quarantined rows replayed into the source's
quarantine log with file-wide line numbers; per stratum, the split of the quota over the parts
is drawn (:func:`draw_splits`) and each part gives its share of its sample
(:func:`merge_samples`); an unstratified sample sizes each span's reservoir to the span's
expected share (:func:`span_capacity`) and samples a span again in the rare case that its
share came out larger (:func:`short_spans`).
"""

from __future__ import annotations

import math
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

from deploysim.procs import worker_pool
from deploysim.records import Quarantined
from deploysim.sample.config import SampleConfig
from deploysim.sample.selection import TurnSelector, choose_from_parts, hypergeometric_split, seeded_generator
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
SPAN_BYTES = 128 << 20


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
    """Worker processes started with ``spawn`` (safe whatever threads this process runs) that die
    with this process (:mod:`deploysim.procs`)."""
    return worker_pool(workers)


def span_tasks(sources: Sequence[SourceConfig], plans: Mapping[int, SpanPlan], *, sample: SampleConfig,
               quotas: dict[str, int] | None, need_conversations: bool,
               quarantine_root: Path | None) -> dict[int, list[SpanTask]]:
    """A task per span of every planned source (quarantined rows under ``quarantine_root``).
    An unstratified sample gets reservoirs sized to the spans' expected shares
    (:func:`span_capacity`, by bytes of all the sources)."""
    total_bytes = sum(src.path.stat().st_size for src in sources if src.path.is_file())
    tasks: dict[int, list[SpanTask]] = {}
    for i, plan in plans.items():
        src = sources[i].model_copy(update={"format": plan.module.NAME})
        tasks[i] = [SpanTask(source=src, source_index=i, module=importable_name(plan.module) or "", span=span,
                             sample=sample, quotas=quotas, need_conversations=need_conversations,
                             quarantine_dir=_span_dir(quarantine_root, i, span),
                             capacity=span_capacity(sample.n, span.end - span.start, total_bytes)
                             if quotas is None else None)
                    for span in plan.spans]
    return tasks


def span_capacity(n: int, span_bytes: int, total_bytes: int) -> int:
    """Reservoir size for a span holding ``span_bytes`` of the sources' ``total_bytes``: its
    expected share of n with 10% and eight standard deviations to spare, at most n.

    The merge takes from each span a hypergeometric share of n that depends only on the
    spans' candidate counts; a span whose sample is smaller than its share is sampled again
    with a reservoir of that share (:func:`short_spans`), so the size only sets the cost:
    a span sampled with a reservoir of n keeps about n·(1 + ln(N_i/n)) turns on the way,
    one sized to its share of about n_i·(1 + ln(N/n)). Compressed sources count with their
    on-disk size, which makes the plain spans' estimated shares larger, never smaller.
    """
    if total_bytes <= 0 or span_bytes >= total_bytes:
        return n
    expected = n * span_bytes / total_bytes
    return min(n, math.ceil(1.1 * expected + 8 * math.sqrt(expected) + 16))


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


Splits = dict["str | None", list[int]]  # per stratum: how many turns each part gives, parts in merge order


def draw_splits(local: TurnSelector | None, spans: Mapping[int, list[SpanResult]],
                quotas: Mapping[str, int] | None, n: int, gen: np.random.Generator) -> Splits:
    """Per stratum (or once, uniform), the hypergeometric split of its quota over the parts:
    the local part first, then every span of every planned source in order."""
    local_samples = local.samples() if local is not None else {}
    splits: Splits = {}
    for stratum in sorted(quotas) if quotas is not None else [None]:
        k = quotas[stratum] if quotas is not None and stratum is not None else n
        populations = [local_samples.get(stratum, (0, []))[0]]
        populations += [r.samples.get(stratum, (0, _EMPTY))[0] for results in spans.values() for r in results]
        splits[stratum] = hypergeometric_split(populations, k, gen)
    return splits


def short_spans(spans: Mapping[int, list[SpanResult]], splits: Splits) -> dict[int, dict[int, int]]:
    """Spans whose sample holds fewer turns than their share of the split: per source, the
    span's position and its share (only an unstratified sample has reservoirs below n)."""
    split = splits.get(None)
    if split is None:
        return {}
    short: dict[int, dict[int, int]] = {}
    shares = iter(split[1:])
    for i, results in spans.items():
        for j, (r, share) in enumerate(zip(results, shares, strict=False)):
            packed = r.samples.get(None, (0, _EMPTY))[1]
            if share > len(packed) // PACKED_FIELDS:
                short.setdefault(i, {})[j] = share
    return short


def merge_samples(local: TurnSelector | None, spans: Mapping[int, list[SpanResult]],
                  quotas: Mapping[str, int] | None, splits: Splits, seed: int,
                  gen: np.random.Generator) -> list[BuildItem]:
    """The final picks: per stratum, each part's share of the split taken uniformly from its
    sample (:func:`~deploysim.sample.selection.choose_from_parts`), then the seeded output
    shuffle. Every part's sample must be its reservoir's whole draw, min(capacity, N)."""
    local_samples = local.samples() if local is not None else {}
    chosen: list[BuildItem] = []
    for stratum, split in splits.items():
        population, items = local_samples.get(stratum, (0, []))
        sizes = [len(items)]
        span_parts: list[tuple[int, int, np.ndarray]] = []  # (source index, line shift, packed rows)
        for i, results in spans.items():
            for r, first in zip(results, first_lines(results), strict=True):
                population, packed = r.samples.get(stratum, (0, _EMPTY))
                rows = np.frombuffer(packed, dtype=np.int64).reshape(-1, PACKED_FIELDS)
                capacity = r.capacity if stratum is None else quotas[stratum]  # type: ignore[index]
                if len(rows) != min(capacity, population):
                    raise RuntimeError(f"span {r.span.index} of source {i} brought {len(rows)} turns, "
                                       f"not min({capacity}, {population})")
                sizes.append(len(rows))
                span_parts.append((i, first - 1, rows))
        keep = choose_from_parts(sizes, split, gen)
        chosen.extend((*items[j][0], items[j][1], stratum, items[j][2]) for j in keep[0].tolist())
        for (i, shift, rows), indices in zip(span_parts, keep[1:], strict=True):
            picked = rows[indices]
            picked[:, 0] += shift  # file-wide line numbers
            lines, ordinals, offsets, lengths, turns, usable = picked.T.tolist()
            payloads = zip(offsets, lengths, strict=True)
            chosen.extend(zip(repeat(i), lines, ordinals, payloads, turns, repeat(stratum), usable))
    return list(map(chosen.__getitem__, seeded_generator(seed, "order").permutation(len(chosen)).tolist()))


_EMPTY: array[int] = array("q")
