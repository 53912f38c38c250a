"""Prefix sampling over whole sources, in memory (no run store): :func:`sample_prefixes`.

One streaming pass reads every source (:class:`SourceReader`), narrows each conversation's
eligible turns with the filters, and offers them to the reservoirs; the reservoirs keep only
references (the row's raw bytes, or its byte offset and length, its line, the conversation's
position in the row, the turn index). Full records are built only for the chosen turns,
lazily, when the result is iterated. Proportional stratification needs the strata sizes
first, so it reads the sources twice (a counting pass, then the sampling pass); explicit
quotas and the plain uniform sample need one pass.

Large plain JSONL sources are read in spans by worker processes, each span being one more
independent part of the stream, and the parts are merged exactly (:mod:`.parallel`); the
same workers then build the records' contents, which this process only validates.
"""

from __future__ import annotations

import weakref
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future
from contextlib import nullcontext
from dataclasses import replace
from itertools import chain
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from pydantic import BaseModel, Field

from deploysim.records import Prefix, Quarantined
from deploysim.sample.allocation import proportional_allocation
from deploysim.sample.config import SampleConfig
from deploysim.sample.eligibility import TurnLimit, candidates, make_turn_filter
from deploysim.sample.parallel import (
    SPAN_BYTES,
    SpanPlan,
    available_cpus,
    draw_splits,
    importable_name,
    merge_samples,
    new_pool,
    plan_source,
    run_spans,
    short_spans,
    span_stats,
    span_tasks,
)
from deploysim.sample.selection import TurnSelector, seeded_generator
from deploysim.sample.spans import (
    BuildItem,
    BuildSource,
    BuildTask,
    PrefixBuilder,
    SpanResult,
    SpanTask,
    build_chunk,
)
from deploysim.sources.config import SourceConfig
from deploysim.sources.formats import FORMATS
from deploysim.sources.formats.base import FormatModule
from deploysim.sources.reader import SourceReader, SourceStats

#: picks per build task sent to a worker, and tasks kept in flight
BUILD_CHUNK = 2000
BUILDS_IN_FLIGHT = 4

QuarantineSink = Callable[[list[Quarantined]], Any]
SpanResults = dict[int, list[SpanResult]]  # per source index, in span order


class StratumReport(BaseModel):
    population: int  # candidate turns after filters and cap
    quota: int
    sampled: int


class SampleReport(BaseModel):
    """What was read and drawn; stored as the ``sample`` stage report of a run."""

    seed: int
    requested: int
    sampled: int
    eligible_turns: int  # eligible turns in the accepted conversations, before filters
    population: int  # candidate turns after filters and cap (inside quotas when stratified)
    outside_quotas: int = 0
    passes: int = 1
    stratify_by: str | None = None
    strata: dict[str, StratumReport] = Field(default_factory=dict)
    sources: list[dict[str, Any]] = Field(default_factory=list)
    config_hash: str | None = None
    complete: bool = False
    resampled_spans: int = 0  # spans read again because their reservoir was below their share
    #: eligible turns left out because their prefix exceeds ``sample.max_prefix_messages``
    too_long: int = 0
    #: the design a rate has to undo (docs/statistics.md, "Sampling design"): the cap per
    #: conversation and whether the strata had explicit quotas
    cap_per_conversation: int | None = None
    explicit_quotas: bool = False

    def source_lines(self) -> list[str]:
        return [f"{s['source']}: read {s['read']} = accepted {s['accepted']} + quarantined {s['quarantined']}"
                for s in self.sources]


class SampledPrefixes:
    """The sample: iterate for :class:`Prefix` records (built on demand, in sampling order);
    ``report`` describes the draw. Holds k references (:data:`BuildItem`), never the records.

    With a worker pool (a source was read in spans) the workers build the records' contents
    in chunks and this process validates them; the pool is shut down when an iteration
    ends, by :meth:`close`, or when the sample is garbage-collected (a later iteration
    builds everything in this process).
    """

    def __init__(self, items: list[BuildItem], sources: list[BuildSource], modules: list[FormatModule | None],
                 report: SampleReport, stats: list[SourceStats], pool: Executor | None = None) -> None:
        self.items = items
        self.sources = sources
        self.modules = modules
        self.report = report
        self.stats = stats
        self._pool = pool
        self._stop_pool = weakref.finalize(self, pool.shutdown, cancel_futures=True) if pool else None

    def __len__(self) -> int:
        return len(self.items)

    def close(self) -> None:
        """Stop the worker processes, if any."""
        if self._stop_pool is not None:
            self._stop_pool()
        self._pool = self._stop_pool = None

    def __iter__(self) -> Iterator[Prefix]:
        if self._pool is not None:
            # the model's own validator, mapped in C over each chunk of documents: no Python
            # frame per record (``model_validate_json``'s wrapper alone is a fifth of the cost
            # of a small record, and this loop is the sampler's one serial part)
            validate = Prefix.__pydantic_validator__.validate_json
            return chain.from_iterable(map(validate, documents)
                                       for documents in self._built_by_workers(self._pool))
        return self._built_here()

    def _built_here(self) -> Iterator[Prefix]:
        builder = PrefixBuilder(self.sources, self.modules)
        try:
            for item in self.items:
                yield Prefix.model_validate(builder.build(item))
        finally:
            builder.close()

    def _built_by_workers(self, pool: Executor) -> Iterator[list[bytes]]:
        """Chunks of prefix documents in sampling order, built by the workers
        (:data:`BUILDS_IN_FLIGHT` chunks ahead); the pool stops when they are all out."""
        sources = tuple(self.sources)
        starts = iter(range(0, len(self.items), BUILD_CHUNK))
        pending: deque[Future[list[bytes]]] = deque()

        def submit() -> None:
            for start in starts:
                task = BuildTask(sources, self.items[start:start + BUILD_CHUNK])
                pending.append(pool.submit(build_chunk, task))
                return

        try:
            for _ in range(BUILDS_IN_FLIGHT):
                submit()
            while pending:
                documents = pending.popleft().result()
                submit()
                yield documents
        finally:
            self.close()


def sample_prefixes(sources: Sequence[SourceConfig], cfg: SampleConfig, *,
                    quarantine_dir: Path | None = None, formats: Sequence[FormatModule] = FORMATS,
                    quarantine_sink: QuarantineSink | None = None,
                    workers: int | None = None, span_bytes: int = SPAN_BYTES) -> SampledPrefixes:
    """Read ``sources`` and draw ``cfg.total`` eligible turns (see :mod:`.selection` for the
    exact scheme). Quarantined rows go to ``quarantine_dir`` (and ``quarantine_sink``).

    Plain JSONL sources of at least ``span_bytes / 4`` are read in spans (:mod:`.parallel`)
    by up to ``workers`` processes (default: the CPUs available; 1 reads the spans here, one
    after the other). The sample depends on the seed, the input, the settings and
    ``span_bytes``, not on ``workers``.
    """
    if not sources:
        raise ValueError("no sources to sample from")
    _check_labels(sources)
    plans = {i: plan for i, src in enumerate(sources) if (plan := plan_source(src, formats, span_bytes))}
    n_spans = sum(len(p.spans) for p in plans.values())
    n_workers = min(available_cpus() if workers is None else workers, n_spans)
    pool = new_pool(n_workers) if n_workers > 1 else None
    try:
        with TemporaryDirectory(prefix="deploysim-sample-") if plans else nullcontext() as tmp:
            draw = _Draw(sources, cfg, formats, plans, pool, Path(tmp) if tmp else None)
            sample = draw.run(quarantine_dir, quarantine_sink)
    except BaseException:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        raise
    if pool is not None and sample._pool is None:
        pool.shutdown()
    return sample


def _check_labels(sources: Sequence[SourceConfig]) -> None:
    seen: dict[str, Path] = {}
    for src in sources:
        if src.label in seen:
            raise ValueError(f"sources {seen[src.label]} and {src.path} share the name {src.label!r}; "
                             "give one of them a distinct name in [[sources]]")
        seen[src.label] = src.path


class _Draw:
    """One draw: the sources read in this process form one part of the stream, each span of
    a planned source another; ``tmp`` holds the spans' quarantine files."""

    def __init__(self, sources: Sequence[SourceConfig], cfg: SampleConfig, formats: Sequence[FormatModule],
                 plans: dict[int, SpanPlan], pool: Executor | None, tmp: Path | None) -> None:
        self.sources, self.cfg, self.formats = sources, cfg, formats
        self.plans, self.pool, self.tmp = plans, pool, tmp
        self.local = [i for i in range(len(sources)) if i not in plans]
        # metadata is only needed to filter or stratify (scan-vouched rows hold only text)
        self.need_conversations = bool(cfg.stratify_by or cfg.languages or cfg.contexts or cfg.min_turns
                                       or cfg.max_turns)
        self.turn_filter = make_turn_filter(cfg)

    def run(self, quarantine_dir: Path | None, sink: QuarantineSink | None) -> SampledPrefixes:
        cfg = self.cfg
        first = self.readers(quarantine_dir, sink)
        quotas: dict[str, int] | None
        if cfg.stratify_by is not None and cfg.quotas is None:  # proportional: count the strata first
            counting = run_spans(self.pool, "count", self.tasks(None, with_quarantine=True))
            sizes = self.strata_sizes(first)  # while the workers count the spans
            first_spans = counting()
            for results in first_spans.values():
                for r in results:
                    sizes.update(r.sizes)
            quotas = proportional_allocation(cfg.n, sizes)
            scan, passes = self.readers(None, None), 2
            select_tasks = self.tasks(quotas, with_quarantine=False)
        else:
            quotas, scan, passes = cfg.quotas, first, 1
            select_tasks = self.tasks(quotas, with_quarantine=True)
        selecting = run_spans(self.pool, "select", select_tasks)
        selector = TurnSelector(n=cfg.n, seed=cfg.seed, cap=cfg.cap_per_conversation, quotas=quotas)
        add, turn_filter = selector.add, self.turn_filter
        limit = TurnLimit(cfg.max_prefix_messages)
        for i, reader in scan.items():
            for line, ordinal, payload, usable, stratum in candidates(reader, turn_filter, cfg.stratify_by,
                                                                      limit):
                add((i, line, ordinal, payload), usable, stratum)
        spans = selecting()
        if passes == 2:
            _same_input(self.sources, _counts(first, first_spans), _counts(scan, spans))
        else:
            first_spans = spans
        stats = [span_stats(self.sources[i], self.plans[i], first_spans[i], quarantine_dir, sink)
                 if i in self.plans else first[i].stats for i in range(len(self.sources))]
        resampled = 0
        if self.plans:
            gen = seeded_generator(cfg.seed, "merge")
            splits = draw_splits(selector, spans, quotas, cfg.n, gen)
            short = short_spans(spans, splits)
            if short:  # a span's reservoir, sized to its expected share, holds less than its share
                spans = self.resample(spans, select_tasks, short)
                resampled = sum(len(positions) for positions in short.values())
            items = merge_samples(selector, spans, quotas, splits, cfg.seed, gen)
        else:
            items = [(*pick.ref, pick.turn, pick.stratum, pick.usable) for pick in selector.picks()]
        report = self.report(items, stats, selector, spans, quotas, passes)
        report.resampled_spans = resampled
        report.too_long = limit.dropped + sum(r.too_long for results in spans.values() for r in results)
        modules = [self.plans[i].module if i in self.plans else scan[i].module
                   for i in range(len(self.sources))]
        names = [importable_name(m) if m is not None else "" for m in modules]
        build_sources = [BuildSource(src, name or "", self.plans[i].fingerprint if i in self.plans else None)
                         for i, (src, name) in enumerate(zip(self.sources, names, strict=True))]
        # workers build the records when they can import every format module and it is worth it
        pool = self.pool if None not in names and len(items) > BUILD_CHUNK else None
        return SampledPrefixes(items, build_sources, modules, report, stats, pool)

    def resample(self, spans: SpanResults, tasks: dict[int, list[SpanTask]],
                 short: dict[int, dict[int, int]]) -> SpanResults:
        """Sample the ``short`` spans again, each with a reservoir of its share (fresh random
        streams; the split already drawn does not depend on any span's sample)."""
        retry = {i: [replace(tasks[i][j], capacity=share, attempt=1, quarantine_dir=None)
                     for j, share in positions.items()] for i, positions in short.items()}
        again = run_spans(self.pool, "select", retry)()
        merged = {i: list(results) for i, results in spans.items()}
        for i, positions in short.items():
            for j, result in zip(positions, again[i], strict=True):
                merged[i][j] = result
        _same_input(self.sources, _counts({}, spans), _counts({}, merged))
        return merged

    def readers(self, quarantine_dir: Path | None, sink: QuarantineSink | None) -> dict[int, SourceReader]:
        return {i: SourceReader(self.sources[i], formats=self.formats, quarantine_dir=quarantine_dir,
                                quarantine_sink=sink, need_conversations=self.need_conversations)
                for i in self.local}

    def tasks(self, quotas: dict[str, int] | None, *, with_quarantine: bool) -> Any:
        return span_tasks(self.sources, self.plans, sample=self.cfg, quotas=quotas,
                          need_conversations=self.need_conversations,
                          quarantine_root=self.tmp if with_quarantine else None)

    def strata_sizes(self, readers: dict[int, SourceReader]) -> Counter[str]:
        """Candidate turns per stratum in ``readers`` (after filters and cap)."""
        cap = self.cfg.cap_per_conversation
        sizes: Counter[str] = Counter()
        limit = TurnLimit(self.cfg.max_prefix_messages)
        for reader in readers.values():
            for _, _, _, usable, stratum in candidates(reader, self.turn_filter, self.cfg.stratify_by, limit):
                sizes[stratum or ""] += len(usable) if cap is None else min(len(usable), cap)
        return sizes

    def report(self, items: list[BuildItem], stats: list[SourceStats], selector: TurnSelector,
               spans: SpanResults, quotas: dict[str, int] | None, passes: int) -> SampleReport:
        span_results = [r for results in spans.values() for r in results]
        strata_population = Counter(selector.stratum_population)
        for r in span_results:
            strata_population.update({h: size for h, (size, _) in r.samples.items() if h is not None})
        report = SampleReport(
            seed=self.cfg.seed, requested=self.cfg.total, sampled=len(items),
            eligible_turns=sum(s.eligible_turns for s in stats),
            population=selector.population + sum(n for r in span_results for n, _ in r.samples.values()),
            outside_quotas=selector.outside + sum(r.outside for r in span_results), passes=passes,
            stratify_by=self.cfg.stratify_by, sources=[s.as_record() for s in stats],
            cap_per_conversation=self.cfg.cap_per_conversation, explicit_quotas=self.cfg.quotas is not None)
        if quotas is not None:
            got = Counter(item[5] for item in items)
            report.strata = {h: StratumReport(population=strata_population.get(h, 0), quota=q,
                                              sampled=got.get(h, 0)) for h, q in sorted(quotas.items())}
        return report


def _counts(readers: dict[int, SourceReader], spans: SpanResults) -> dict[int, tuple[int, int]]:
    """(read, accepted) per source."""
    counts = {i: (r.stats.read, r.stats.accepted) for i, r in readers.items()}
    for i, results in spans.items():
        counts[i] = (sum(r.read for r in results), sum(r.accepted for r in results))
    return counts


def _same_input(sources: Sequence[SourceConfig], first: dict[int, tuple[int, int]],
                second: dict[int, tuple[int, int]]) -> None:
    for i, counts in first.items():
        if counts != second[i]:
            raise ValueError(f"{sources[i].path} changed while it was being sampled "
                             f"({counts[0]} rows on the first read, {second[i][0]} on the second)")
