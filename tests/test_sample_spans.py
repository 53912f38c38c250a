"""Sampling a plain JSONL file in byte spans: same counts, exact uniformity, file-wide lines.

A small file is forced into several spans with ``span_bytes``; ``workers=1`` runs the spans
in this process (fast), one test runs them in spawned worker processes. Bad rows sit in
later spans, the file has a byte-order mark, CRLF and blank lines.
"""

from __future__ import annotations

import gzip
import math
from array import array
from collections import Counter
from itertools import pairwise, product
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from scipy.stats import chisquare

from deploysim.records import Quarantined
from deploysim.sample import parallel, sampler, selection
from deploysim.sample.config import SampleConfig
from deploysim.sample.parallel import draw_splits, merge_samples, plan_source, span_capacity, span_count
from deploysim.sample.sampler import SampledPrefixes, sample_prefixes
from deploysim.sample.selection import choose_from_parts, hypergeometric_split
from deploysim.sample.spans import SpanResult
from deploysim.sources import containers
from deploysim.sources.config import SourceConfig
from deploysim.sources.formats import FORMATS
from deploysim.sources.reader import SourceReader
from deploysim.sources.shards import ByteSpan, open_span, plan_spans

CONTEXTS = ["general_chat", "coding_assistant", "customer_support"]
N_ROWS = 60
P_FLOOR = 0.001  # fixed seeds make these tests deterministic; a biased merge lands far below this


def turns_of(i: int) -> int:
    return 1 + (i * 7) % 4


def row(i: int) -> dict[str, Any]:
    msgs: list[dict[str, Any]] = [{"role": "system", "content": "sys"}] if i % 3 == 0 else []
    for t in range(turns_of(i)):
        msgs.append({"role": "user", "content": f"u{i}.{t}"})
        if i % 5 == 0 and t == 0:  # answered through a tool call
            msgs.append({"role": "assistant", "content": None, "tool_calls": [
                {"id": f"call{i}", "type": "function", "function": {"name": "f", "arguments": "{}"}}]})
            msgs.append({"role": "tool", "tool_call_id": f"call{i}", "content": "out"})
        msgs.append({"role": "assistant", "content": f"a{i}.{t}"})
    return {"id": f"c{i}", "model": "prod-y", "messages": msgs,
            "metadata": {"product_context": CONTEXTS[i % 3], "language": "en" if i % 2 else "de"}}


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, list[int]]:
    """N_ROWS conversations in a BOM-prefixed file with CRLF and blank lines; bad rows near
    the end. Returns the path and the line numbers of the bad rows."""
    lines = [orjson.dumps(row(i)) for i in range(N_ROWS)]
    lines.insert(45, b"")
    lines.insert(50, b'{"messages": [{"role": "user"')
    lines.insert(55, b'{"messages": 3}')
    ends = [b"\r\n" if n % 4 == 0 else b"\n" for n in range(len(lines))]
    data = b"\xef\xbb\xbf" + b"".join(line + end for line, end in zip(lines, ends, strict=True))
    path = tmp_path / "traffic.jsonl"
    path.write_bytes(data)
    return path, [51, 56]


def spans_of(path: Path) -> int:
    """span_bytes giving this file 4 spans."""
    return path.stat().st_size // 3


def draw(path: Path, cfg: SampleConfig, *, split: bool = True, **kw: Any) -> SampledPrefixes:
    span_bytes = spans_of(path) if split else 1 << 40
    return sample_prefixes([SourceConfig(path=path)], cfg, span_bytes=span_bytes, **{"workers": 1, **kw})


def picked_turns(sample: SampledPrefixes) -> list[tuple[int, int]]:
    """(line, turn) of every pick, without building records."""
    return [(item[1], item[4]) for item in sample.items]


def all_turns(path: Path) -> list[tuple[int, int]]:
    return sorted(picked_turns(draw(path, SampleConfig(n=10_000), split=False)))


def test_spans_are_cut_at_line_starts_and_counted_by_size(corpus: tuple[Path, list[int]]) -> None:
    path, _ = corpus
    data = path.read_bytes()
    spans = plan_spans(path, 4)
    assert [s.index for s in spans] == [0, 1, 2, 3]
    assert spans[0].start == 0 and spans[-1].end == len(data)
    assert all(a.end == b.start and data[b.start - 1:b.start] == b"\n" for a, b in pairwise(spans))
    plan = plan_source(SourceConfig(path=path), FORMATS, spans_of(path))
    assert plan is not None and len(plan.spans) == 4
    mib = 1 << 20
    assert [span_count(s, 512 * mib) for s in (100 * mib, 128 * mib, 900 * mib, 1100 * mib, 3000 * mib)] == \
        [1, 2, 2, 4, 8]


def test_compressed_json_and_small_files_are_read_in_one_piece(corpus: tuple[Path, list[int]],
                                                               tmp_path: Path) -> None:
    path, _ = corpus
    data = path.read_bytes()
    gz = tmp_path / "traffic.jsonl.gz"
    gz.write_bytes(gzip.compress(data))
    array = tmp_path / "traffic.json"
    array.write_bytes(b"[" + b",".join(orjson.dumps(row(i)) for i in range(N_ROWS)) + b"]")
    for p in (gz, array):
        assert plan_source(SourceConfig(path=p), FORMATS, 64) is None
    assert plan_source(SourceConfig(path=path), FORMATS, 4 * len(data) + 4) is None


def test_row_offsets_point_at_every_row(corpus: tuple[Path, list[int]],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = corpus
    data = path.read_bytes()
    monkeypatch.setattr(containers, "CHUNK_BYTES", 256)  # rows straddle read chunks
    cfg = SourceConfig(path=path, format="openai", max_row_bytes=300)  # and some are skipped as oversized
    accepted = []
    for span in [None, *plan_spans(path, 4)]:
        reader = SourceReader(cfg, need_conversations=False, row_offsets=True, span=span)
        for line, payload, _, _ in reader:
            offset = reader.row_offset(line)
            assert data[offset:offset + len(payload)] == payload
        accepted.append(reader.stats.accepted)
    whole, *parts = accepted
    assert 0 < whole == sum(parts) < N_ROWS  # the oversized rows are quarantined, the others all read


def test_counts_quarantine_lines_and_population_match_one_process(corpus: tuple[Path, list[int]],
                                                                  tmp_path: Path) -> None:
    path, bad_lines = corpus
    sunk: dict[str, list[Quarantined]] = {"one": [], "split": []}
    cfg = SampleConfig(n=20, seed=4)
    one = draw(path, cfg, split=False, quarantine_dir=tmp_path / "q1", quarantine_sink=sunk["one"].extend)
    split = draw(path, cfg, quarantine_dir=tmp_path / "q2", quarantine_sink=sunk["split"].extend)
    (a,), (b,) = one.report.sources, split.report.sources
    assert {k: v for k, v in a.items() if k != "quarantine_path"} == \
        {k: v for k, v in b.items() if k != "quarantine_path"}
    assert (b["read"], b["accepted"], b["quarantined"]) == (N_ROWS + 2, N_ROWS, 2)
    assert split.report.population == one.report.population == sum(turns_of(i) for i in range(N_ROWS))
    assert [q.line for q in sunk["split"]] == [q.line for q in sunk["one"]] == bad_lines
    assert Path(b["quarantine_path"]).read_bytes() == Path(a["quarantine_path"]).read_bytes()
    assert [q.line for q in split.stats[0].examples] == bad_lines


@pytest.mark.parametrize("capacity", [None, 2, 1])  # reservoirs of n; or below some spans' shares
def test_uniform_over_turns_across_spans_chi_square(corpus: tuple[Path, list[int]], capacity: int | None,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """With span reservoirs smaller than their shares, short spans are sampled again and
    the merged sample stays exactly uniform."""
    path, _ = corpus
    if capacity is not None:
        monkeypatch.setattr(parallel, "span_capacity", lambda n, span_bytes, total_bytes: capacity)
    turns = all_turns(path)
    k, runs = 6, 300
    counts: Counter[tuple[int, int]] = Counter()
    resampled = 0
    for seed in range(runs):
        sample = draw(path, SampleConfig(n=k, seed=seed))
        picks = picked_turns(sample)
        resampled += sample.report.resampled_spans
        assert len(set(picks)) == k
        counts.update(picks)
    # four spans sharing six turns: a reservoir of 1 is always short somewhere, one of 2 often
    assert (resampled > 0) == (capacity is not None)
    assert set(counts) <= set(turns)
    assert chisquare([counts[t] for t in turns]).pvalue > P_FLOOR


def test_uniform_across_spans_and_a_file_read_here_chi_square(corpus: tuple[Path, list[int]],
                                                               tmp_path: Path) -> None:
    path, _ = corpus
    small = tmp_path / "small.jsonl.gz"  # gzip: read in this process, the merge's local part
    small.write_bytes(gzip.compress(b"".join(orjson.dumps(row(i)) + b"\n" for i in range(200, 215))))
    sources = [SourceConfig(path=path), SourceConfig(path=small)]
    everything = sample_prefixes(sources, SampleConfig(n=10_000), span_bytes=1 << 40)
    turns = sorted((item[0], item[1], item[4]) for item in everything.items)
    k, runs = 6, 300
    counts: Counter[tuple[int, int, int]] = Counter()
    for seed in range(runs):
        sample = sample_prefixes(sources, SampleConfig(n=k, seed=seed), span_bytes=spans_of(path), workers=1)
        counts.update((item[0], item[1], item[4]) for item in sample.items)
    assert {source for source, _, _ in counts} == {0, 1}
    assert chisquare([counts[t] for t in turns]).pvalue > P_FLOOR


def test_cap_is_exact_across_spans_chi_square(corpus: tuple[Path, list[int]]) -> None:
    path, _ = corpus
    turns = all_turns(path)
    per_line = Counter(line for line, _ in turns)
    k, cap, runs = 6, 1, 300
    capped = sum(min(m, cap) for m in per_line.values())
    counts: Counter[tuple[int, int]] = Counter()
    for seed in range(runs):
        picks = picked_turns(draw(path, SampleConfig(n=k, seed=seed, cap_per_conversation=cap)))
        assert max(Counter(line for line, _ in picks).values()) <= cap
        counts.update(picks)
    # P(turn of conversation j drawn) = min(1, cap/m_j) * k / N'
    expected = [runs * min(1.0, cap / per_line[line]) * k / capped for line, _ in turns]
    assert chisquare([counts[t] for t in turns], expected).pvalue > P_FLOOR


def test_reproducible_and_the_same_with_worker_processes(corpus: tuple[Path, list[int]],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = corpus
    cfg = SampleConfig(n=30, seed=3)
    here = list(draw(path, cfg))
    assert here == list(draw(path, cfg))
    assert [p.id for p in here] != [p.id for p in draw(path, SampleConfig(n=30, seed=5))]
    monkeypatch.setattr(sampler, "BUILD_CHUNK", 4)  # so that the workers build the records too
    in_workers = draw(path, cfg, workers=2)
    assert in_workers._pool is not None
    assert list(in_workers) == here
    assert in_workers._pool is None  # stopped once the iteration ended


def test_strata_and_filters_across_spans(corpus: tuple[Path, list[int]]) -> None:
    path, _ = corpus
    for cfg in (SampleConfig(n=12, seed=1, stratify_by="product_context"),
                SampleConfig(stratify_by="language", quotas={"en": 4, "de": 3}, seed=2),
                SampleConfig(n=9, seed=3, languages=["de"], min_turns=2)):
        one, split = draw(path, cfg, split=False), draw(path, cfg)
        assert split.report.passes == one.report.passes
        assert split.report.population == one.report.population > 0
        assert split.report.strata == one.report.strata or not one.report.strata
        prefixes = list(split)
        assert len(prefixes) == one.report.sampled
        if cfg.stratify_by == "product_context":
            assert split.report.passes == 2 and Counter(p.stratum for p in prefixes) == \
                {h: s.quota for h, s in split.report.strata.items()}
            assert all(p.context.product_context == p.stratum for p in prefixes)
        elif cfg.quotas:
            assert Counter(p.context.language for p in prefixes) == {"en": 4, "de": 3}
        else:
            assert {p.context.language for p in prefixes} == {"de"}


def test_a_file_changed_after_sampling_is_refused(corpus: tuple[Path, list[int]]) -> None:
    path, _ = corpus
    sample = draw(path, SampleConfig(n=5))
    path.write_bytes(path.read_bytes() + orjson.dumps(row(999)) + b"\n")
    with pytest.raises(ValueError, match="changed while it was being sampled"):
        list(sample)


def test_span_stream_stops_at_the_span_end(corpus: tuple[Path, list[int]]) -> None:
    path, _ = corpus
    data = path.read_bytes()
    span = plan_spans(path, 4)[1]
    opened = open_span(path, span)
    assert opened.stream is not None
    got = opened.head + opened.stream.read()
    opened.close()
    assert got == data[span.start:span.end] and opened.head_at == span.start


def hypergeometric_pmf(populations: list[int], split: tuple[int, ...], k: int) -> float:
    ways = math.prod(math.comb(n, s) for n, s in zip(populations, split, strict=True))
    return ways / math.comb(sum(populations), k)


@pytest.mark.parametrize("numpy_limit", [10**9, 0])  # numpy's sampler, and the pure-Python one beyond it
def test_split_follows_the_multivariate_hypergeometric(numpy_limit: int,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selection, "_NUMPY_HYPERGEOMETRIC_LIMIT", numpy_limit)
    populations, k, runs = [3, 2, 4], 3, 6000
    gen = np.random.default_rng(11)
    counts = Counter(tuple(hypergeometric_split(populations, k, gen)) for _ in range(runs))
    splits = [s for s in product(*(range(n + 1) for n in populations)) if sum(s) == k]
    assert set(counts) <= set(splits)
    expected = [runs * hypergeometric_pmf(populations, s, k) for s in splits]
    assert chisquare([counts[s] for s in splits], expected).pvalue > P_FLOOR
    assert hypergeometric_split([2, 1], 5, gen) == [2, 1]  # fewer items than asked: all


def test_span_capacity_is_the_expected_share_with_room_to_spare() -> None:
    assert span_capacity(200_000, 500, 1000) == 112_546  # 1.1 * 100_000 + 8 * sqrt(100_000) + 16
    assert span_capacity(200_000, 1000, 1000) == span_capacity(200_000, 5, 0) == 200_000
    assert span_capacity(10, 1, 4) == 10  # never above n
    assert span_capacity(1_000_000, 1, 8) > 1.1 * 1_000_000 / 8


def test_merge_needs_each_parts_whole_draw() -> None:
    def span_result(population: int, turns: int, capacity: int) -> SpanResult:
        packed = array("q", [1, 0, 0, 10, 0, 1] * turns)
        return SpanResult(span=ByteSpan(0, 0, 1), lines=1, read=1, accepted=1, quarantined=0,
                          conversations=1, eligible_turns=population, quarantine_file=None,
                          samples={None: (population, packed)}, capacity=capacity)

    gen = np.random.default_rng(0)
    full = {0: [span_result(5, 3, 3), span_result(2, 2, 3), span_result(0, 0, 3)]}
    items = merge_samples(None, full, None, draw_splits(None, full, None, 3, gen), 0, gen)
    assert len(items) == 3
    short = {0: [span_result(5, 2, 3), span_result(2, 2, 3)]}  # 2 turns, not min(3, 5)
    with pytest.raises(RuntimeError, match="brought 2 turns, not min"):
        merge_samples(None, short, None, draw_splits(None, short, None, 3, gen), 0, gen)
    assert [len(k) for k in choose_from_parts([1, 2], [1, 2], gen)] == [1, 2]
    with pytest.raises(ValueError, match="cannot give the 2 items"):
        choose_from_parts([1, 2], [2, 1], gen)  # a sample below its share: the span is resampled
