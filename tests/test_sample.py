"""Sampling maths: reservoir uniformity, cap scheme, allocation, strata, filters, prefixes."""

from __future__ import annotations

import random
from collections import Counter
from itertools import combinations
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare

from deploysim.hashing import content_hash
from deploysim.records import Conversation, Prefix
from deploysim.sample import reservoir
from deploysim.sample.allocation import proportional_allocation
from deploysim.sample.config import SampleConfig
from deploysim.sample.eligibility import MISSING_STRATUM, make_turn_filter, stratum_of
from deploysim.sample.prefixes import make_prefix, prefix_from_dict, production_completion
from deploysim.sample.reservoir import Reservoir
from deploysim.sample.selection import TurnSelector

# a small corpus: conversation j has BLOCKS[j] eligible turns (turn indices 0, 2, 4, ...)
BLOCKS = [1, 3, 1, 5, 2, 1, 4, 1, 2, 6, 1, 3, 2, 1, 5, 1, 2, 3, 1, 2]
ALL_TURNS = [(j, 2 * t) for j, m in enumerate(BLOCKS) for t in range(m)]
P_FLOOR = 0.001  # fixed seeds make these tests deterministic; a biased sampler lands far below this


def draw(seed: int, k: int, cap: int | None = None) -> list[tuple[int, int]]:
    sel = TurnSelector(n=k, seed=seed, cap=cap)
    for j, m in enumerate(BLOCKS):
        sel.add(j, [2 * t for t in range(m)])
    return [(p.ref, p.turn) for p in sel.picks()]


def test_uniform_over_all_eligible_turns_chi_square() -> None:
    k, runs = 4, 3000
    counts = Counter(item for seed in range(runs) for item in draw(seed, k))
    observed = [counts[t] for t in ALL_TURNS]
    assert sum(observed) == k * runs
    assert chisquare(observed).pvalue > P_FLOOR
    # per-conversation totals are proportional to the number of eligible turns, not uniform
    per_conv = Counter(j for j, _ in counts.elements())
    assert per_conv[9] > 4 * per_conv[0]


def test_uniform_when_selections_are_computed_in_tiny_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    # the reservoir evaluates Algorithm L's recurrences BATCH selections ahead; the hand-over
    # from one batch to the next must not bias anything
    monkeypatch.setattr(reservoir, "BATCH", 2)
    k, runs = 4, 3000
    counts = Counter(item for seed in range(runs) for item in draw(seed, k))
    assert chisquare([counts[t] for t in ALL_TURNS]).pvalue > P_FLOOR
    pairs = Counter(pair for seed in range(runs) for pair in combinations(sorted(draw(seed, 2)), 2))
    assert chisquare([pairs[p] for p in combinations(ALL_TURNS, 2)]).pvalue > P_FLOOR


def test_cap_scheme_inclusion_probabilities_chi_square() -> None:
    k, cap, runs = 5, 2, 3000
    capped_population = sum(min(m, cap) for m in BLOCKS)
    counts: Counter[tuple[int, int]] = Counter()
    for seed in range(runs):
        picks = draw(seed, k, cap)
        assert max(Counter(j for j, _ in picks).values()) <= cap
        counts.update(picks)
    # P(turn of conversation j drawn) = min(1, cap/m_j) * k / N'
    expected = [runs * min(1.0, cap / BLOCKS[j]) * k / capped_population for j, _ in ALL_TURNS]
    observed = [counts[t] for t in ALL_TURNS]
    assert sum(observed) == k * runs and abs(sum(expected) - k * runs) < 1e-6
    assert chisquare(observed, expected).pvalue > P_FLOOR


def test_same_seed_same_picks_same_order_other_seed_differs() -> None:
    assert draw(11, 6) == draw(11, 6)
    assert draw(11, 6) != draw(12, 6)
    many = draw(11, 30)
    assert many != sorted(many)  # output order is a seeded shuffle, not stream order


def test_small_corpus_is_taken_whole() -> None:
    assert sorted(draw(0, 1000)) == ALL_TURNS


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 7), max_size=40), st.integers(0, 30), st.integers(0, 2**32))
def test_reservoir_keeps_min_k_n_distinct_items(blocks: list[int], k: int, seed: int) -> None:
    res = Reservoir(k, random.Random(seed))
    pos = 0
    for m in blocks:
        for slot, j in res.offer(m):
            assert 0 <= j < m and 0 <= slot < k
            res.items[slot] = pos + j
        pos += m
    sample = res.sample()
    assert len(sample) == min(k, pos) == len(set(sample))
    assert all(0 <= x < pos for x in sample)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 500), st.dictionaries(st.text(min_size=1, max_size=3), st.integers(0, 200), max_size=8))
def test_proportional_allocation_properties(n: int, population: dict[str, int]) -> None:
    alloc = proportional_allocation(n, population)
    total = sum(population.values())
    assert set(alloc) == set(population)
    assert sum(alloc.values()) == min(n, total)
    for h, size in population.items():
        assert 0 <= alloc[h] <= size
        if total and n < total:
            assert abs(alloc[h] - n * size / total) < 1


def test_proportional_allocation_example() -> None:
    assert proportional_allocation(10, {"a": 50, "b": 30, "c": 20}) == {"a": 5, "b": 3, "c": 2}
    assert proportional_allocation(2, {"a": 1, "b": 1, "c": 1}) == {"a": 1, "b": 1, "c": 0}  # ties by name


def test_stratified_quotas_exact_and_uniform_within_stratum() -> None:
    strata = {j: ("even" if j % 2 == 0 else "odd") for j in range(len(BLOCKS))}
    runs = 2000
    counts: Counter[tuple[int, int]] = Counter()
    for seed in range(runs):
        sel = TurnSelector(n=0, seed=seed, quotas={"even": 2, "odd": 3})
        for j, m in enumerate(BLOCKS):
            sel.add(j, [2 * t for t in range(m)], strata[j])
        picks = sel.picks()
        assert Counter(p.stratum for p in picks) == {"even": 2, "odd": 3}
        assert all(strata[p.ref] == p.stratum for p in picks)
        counts.update((p.ref, p.turn) for p in picks)
    for name in ("even", "odd"):
        observed = [counts[t] for t in ALL_TURNS if strata[t[0]] == name]
        assert chisquare(observed).pvalue > P_FLOOR


def test_strata_without_quota_are_counted_not_sampled() -> None:
    sel = TurnSelector(n=0, seed=0, quotas={"a": 1})
    sel.add("x", [0, 2], "a")
    sel.add("y", [0, 2, 4], "b")
    assert [p.ref for p in sel.picks()] == ["x"] and sel.outside == 3 and sel.population == 2


# -- filters and strata on normalized dicts -----------------------------------------------
def conv_dict(users: int = 2, **meta: Any) -> dict[str, Any]:
    msgs: list[dict[str, Any]] = [{"role": "system", "content": "be brief"}]
    for i in range(users):
        msgs += [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]
    return {"id": "c", "messages": msgs, "meta": {"source": "s", **meta}}


def test_turn_filters() -> None:
    turns = [1, 3, 5]
    f = make_turn_filter(SampleConfig(languages=["EN"], contexts=["general_chat"], min_turns=2, max_turns=3))
    assert f is not None
    assert f(conv_dict(3, language="en", product_context="general_chat"), turns) == turns
    assert f(conv_dict(3, language="de", product_context="general_chat"), turns) == []
    assert f(conv_dict(3, language="en"), turns) == []
    assert f(conv_dict(1, language="en", product_context="general_chat"), [1]) == []
    assert f(conv_dict(4, language="en", product_context="general_chat"), turns) == []
    text_only = make_turn_filter(SampleConfig())
    assert text_only is not None
    with_image = conv_dict(3, extra={"non_text_messages": [3]})
    assert text_only(with_image, turns) == [1]
    assert make_turn_filter(SampleConfig(text_only=False)) is None


def test_stratum_of_meta_and_extra_fields() -> None:
    conv = conv_dict(language="en", extra={"tier": "pro"})
    assert stratum_of(conv, "language") == "en"
    assert stratum_of(conv, "tier") == "pro"
    assert stratum_of(conv, "product_context") == MISSING_STRATUM


def test_sample_config_checks() -> None:
    with pytest.raises(ValueError, match="stratify_by"):
        SampleConfig(quotas={"a": 1})
    with pytest.raises(ValueError, match="min_turns"):
        SampleConfig(min_turns=3, max_turns=2)
    assert SampleConfig(stratify_by="language", quotas={"en": 3, "de": 2}).total == 5


# -- prefixes ------------------------------------------------------------------------------
AGENTIC = {
    "id": "conv-1",
    "tools": [{"name": "lookup", "description": "find an order", "parameters": {"type": "object"}}],
    "meta": {"source": "s", "deployed_model": "prod-y", "product_context": "customer_support",
             "language": "en", "timestamp": "2026-01-01T00:00:00Z"},
    "messages": [
        {"role": "system", "content": "You are support."},
        {"role": "user", "content": "where is order 7?"},
        {"role": "assistant", "content": "",
         "tool_calls": [{"id": "t1", "name": "lookup", "arguments": "{}"}]},
        {"role": "tool", "content": "shipped", "tool_call_id": "t1"},
        {"role": "assistant", "content": "It shipped."},
        {"role": "user", "content": "thanks"},
        {"role": "assistant", "content": "You're welcome."},
    ],
}


def test_prefix_cut_context_and_continuation() -> None:
    conv = Conversation.model_validate(AGENTIC)
    p = make_prefix(conv, 1, stratum="customer_support")
    assert [m.role for m in p.messages] == ["system", "user"]
    assert p.context.system_prompt == "You are support." and p.context.tools == conv.tools
    assert (p.context.deployed_model, p.context.product_context, p.context.language) == (
        "prod-y", "customer_support", "en")
    assert p.continuation is not None and p.continuation.response.tool_calls[0].name == "lookup"
    assert [(m.role, m.provenance) for m in p.continuation.steps] == [("tool", "real"), ("assistant", None)]
    assert p.id == Prefix.make_id(conv.id, 1, conv.messages[:2], conv.tools)
    last = make_prefix(conv, 5)
    assert last.continuation is not None and last.continuation.steps == ()
    assert last.id == Prefix.make_id(conv.id, 5, conv.messages[:6], conv.tools) != p.id
    assert prefix_from_dict(AGENTIC, 1, "customer_support") == p
    with pytest.raises(ValueError, match="not an eligible turn"):
        make_prefix(conv, 3)


def test_production_completion_is_the_real_response() -> None:
    p = make_prefix(Conversation.model_validate(AGENTIC), 1)
    c = production_completion(p, "y_prod")
    assert c is not None and p.continuation is not None
    assert (c.arm, c.model, c.status, c.prefix_id) == ("y_prod", "prod-y", "ok", p.id)
    assert c.generator_hash == content_hash(["production", "prod-y"])
    assert c.message == p.continuation.response
    assert c.transcript == (p.continuation.response, *p.continuation.steps)
    unnamed = make_prefix(Conversation.model_validate({**AGENTIC, "meta": {"source": "s"}}), 5)
    assert production_completion(unnamed, "y_prod").model == "production"  # type: ignore[union-attr]
