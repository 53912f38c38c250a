"""Prefix sampling over whole sources, in memory (no run store): :func:`sample_prefixes`.

One streaming pass reads every source (:class:`SourceReader`), narrows each conversation's
eligible turns with the filters, and offers them to the reservoirs; the reservoirs keep only
references (the row's raw bytes, its line, the conversation's position in the row, the turn
index). Full records are built only for the chosen turns, lazily, when the result is
iterated. Proportional stratification needs the strata sizes first, so it reads the sources
twice (a counting pass, then the sampling pass); explicit quotas and the plain uniform
sample need one pass.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from deploysim.records import Prefix, Quarantined
from deploysim.sample.allocation import proportional_allocation
from deploysim.sample.config import SampleConfig
from deploysim.sample.eligibility import TurnFilter, make_turn_filter, stratum_of
from deploysim.sample.prefixes import prefix_from_dict
from deploysim.sample.selection import Pick, TurnSelector
from deploysim.sources.config import SourceConfig
from deploysim.sources.formats import FORMATS
from deploysim.sources.formats.base import FormatModule
from deploysim.sources.reader import SourceReader, SourceStats


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

    def source_lines(self) -> list[str]:
        return [f"{s['source']}: read {s['read']} = accepted {s['accepted']} + quarantined {s['quarantined']}"
                for s in self.sources]


class SampledPrefixes:
    """The sample: iterate for :class:`Prefix` records (built on demand, in sampling order);
    ``report`` describes the draw. Holds k references, never the built records."""

    def __init__(self, picks: list[Pick], readers: list[SourceReader], report: SampleReport,
                 stats: list[SourceStats]) -> None:
        self.picks = picks
        self.readers = readers
        self.report = report
        self.stats = stats

    def __len__(self) -> int:
        return len(self.picks)

    def __iter__(self) -> Iterator[Prefix]:
        for pick in self.picks:
            source_index, line, ordinal, payload = pick.ref
            conv = self.readers[source_index].convert_payload(payload, line)[ordinal]
            yield prefix_from_dict(conv, pick.turn, pick.stratum)


def _check_labels(sources: Sequence[SourceConfig]) -> None:
    seen: dict[str, Path] = {}
    for src in sources:
        if src.label in seen:
            raise ValueError(f"sources {seen[src.label]} and {src.path} share the name {src.label!r}; "
                             "give one of them a distinct name in [[sources]]")
        seen[src.label] = src.path


#: reference to a conversation kept by the reservoirs: (source index, line, position in row, payload)
Ref = tuple[int, int, int, bytes]


def _candidates(readers: Sequence[SourceReader], turn_filter: TurnFilter | None,
                stratify_by: str | None) -> Iterator[tuple[Ref, list[int], str | None]]:
    """((source index, line, position in row, payload), usable turns, stratum) for every
    conversation with usable turns. The hot loop of sampling: rows that a format's ``scan``
    vouched for (``convs`` None) hold plain text only and skip filters."""
    for source_index, reader in enumerate(readers):
        for line, payload, convs, turns in reader:
            ordinal = -1
            for usable in turns:
                ordinal += 1
                if not usable:
                    continue
                if convs is None:
                    yield (source_index, line, ordinal, payload), usable, None
                    continue
                conv = convs[ordinal]
                if turn_filter is not None:
                    usable = turn_filter(conv, usable)
                    if not usable:
                        continue
                stratum = stratum_of(conv, stratify_by) if stratify_by is not None else None
                yield (source_index, line, ordinal, payload), usable, stratum


def sample_prefixes(sources: Sequence[SourceConfig], cfg: SampleConfig, *,
                    quarantine_dir: Path | None = None, formats: Sequence[FormatModule] = FORMATS,
                    quarantine_sink: Callable[[list[Quarantined]], Any] | None = None) -> SampledPrefixes:
    """Read ``sources`` and draw ``cfg.total`` eligible turns (see :mod:`.selection` for the
    exact scheme). Quarantined rows go to ``quarantine_dir`` (and ``quarantine_sink``)."""
    if not sources:
        raise ValueError("no sources to sample from")
    _check_labels(sources)

    # metadata is only needed to filter or stratify (scan-vouched rows hold only text)
    need_conversations = bool(cfg.stratify_by or cfg.languages or cfg.contexts or cfg.min_turns
                              or cfg.max_turns)

    def readers(with_quarantine: bool) -> list[SourceReader]:
        return [SourceReader(s, formats=formats, quarantine_dir=quarantine_dir if with_quarantine else None,
                             quarantine_sink=quarantine_sink if with_quarantine else None,
                             need_conversations=need_conversations) for s in sources]

    turn_filter = make_turn_filter(cfg)
    cap = cfg.cap_per_conversation
    quotas = cfg.quotas
    first = readers(True)
    scan, passes = first, 1
    if cfg.stratify_by is not None and quotas is None:
        sizes: Counter[str] = Counter()
        for _, usable, stratum in _candidates(first, turn_filter, cfg.stratify_by):
            sizes[stratum or ""] += len(usable) if cap is None else min(len(usable), cap)
        quotas = proportional_allocation(cfg.n, sizes)
        scan, passes = readers(False), 2

    selector = TurnSelector(n=cfg.n, seed=cfg.seed, cap=cap, quotas=quotas)
    add = selector.add
    for ref, usable, stratum in _candidates(scan, turn_filter, cfg.stratify_by):
        add(ref, usable, stratum)
    if passes == 2:
        _same_input(first, scan)
    picks = selector.picks()
    stats = [r.stats for r in first]
    report = SampleReport(
        seed=cfg.seed, requested=cfg.total, sampled=len(picks),
        eligible_turns=sum(s.eligible_turns for s in stats),
        population=selector.population, outside_quotas=selector.outside, passes=passes,
        stratify_by=cfg.stratify_by, sources=[s.as_record() for s in stats])
    if quotas is not None:
        got = selector.sampled_per_stratum()
        report.strata = {h: StratumReport(population=selector.stratum_population.get(h, 0), quota=q,
                                          sampled=got.get(h, 0)) for h, q in sorted(quotas.items())}
    return SampledPrefixes(picks, scan, report, stats)


def _same_input(first: Sequence[SourceReader], second: Sequence[SourceReader]) -> None:
    for a, b in zip(first, second, strict=True):
        if (a.stats.read, a.stats.accepted) != (b.stats.read, b.stats.accepted):
            raise ValueError(f"{a.cfg.path} changed while it was being sampled "
                             f"({a.stats.read} rows on the first read, {b.stats.read} on the second)")
