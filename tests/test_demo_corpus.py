"""The demo corpus generator: determinism, OpenAI chat shape, mix, categories, planted PII, windows."""

from __future__ import annotations

import gzip
import itertools
import json
import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from deploysim.demo import (
    CATEGORIES,
    PII_KINDS,
    RELEASE_MULTIPLIERS,
    CorpusStats,
    corpus_spec,
    exhibited_categories,
    generate_corpus,
    iter_corpus,
    iter_demo_conversations,
)
from deploysim.demo.pii import iban_valid, luhn_valid
from deploysim.demo.spec import CONTEXTS, LANGUAGES, SITUATIONS
from deploysim.demo.tools import TOOL_SCHEMAS

N = 3000


@dataclass
class Corpus:
    path: Path
    stats: CorpusStats
    rows: list[dict[str, Any]]
    truth: list[dict[str, Any]]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    folder = tmp_path_factory.mktemp("demo")
    path, truth = folder / "baseline.jsonl.gz", folder / "baseline.truth.jsonl"
    stats = generate_corpus(path, n=N, seed=11, truth_path=truth)
    return Corpus(path, stats, _rows(path), [json.loads(line) for line in truth.read_text().splitlines()])


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    path = tmp_path_factory.mktemp("demo") / "release.jsonl"
    stats = generate_corpus(path, n=N, seed=11, window="release")
    return Corpus(path, stats, _rows(path), [])


def _rows(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        return [json.loads(line) for line in fh]


def _texts(row: dict[str, Any]) -> str:
    """Everything a de-identifier has to scan: message contents and tool-call arguments."""
    parts = []
    for m in row["messages"]:
        parts.append(m.get("content") or "")
        parts.extend(c["function"]["arguments"] for c in m.get("tool_calls") or ())
    return "\n".join(parts)


# -- determinism ----------------------------------------------------------------------------------
def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    for name in ("a.jsonl", "b.jsonl", "a.jsonl.gz", "b.jsonl.gz"):
        generate_corpus(tmp_path / name, n=200, seed=5)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()
    generate_corpus(tmp_path / "c.jsonl", n=200, seed=6)
    assert (tmp_path / "c.jsonl").read_bytes() != (tmp_path / "a.jsonl").read_bytes()


def test_iterator_yields_the_rows_written(tmp_path: Path) -> None:
    generate_corpus(tmp_path / "x.jsonl", n=150, seed=3, window="release")
    assert list(iter_corpus(150, 3, "release")) == _rows(tmp_path / "x.jsonl")


def test_windows_are_different_traffic(baseline: Corpus,
                                       release: Corpus) -> None:
    base_rows, rel_rows = baseline.rows, release.rows
    assert {r["metadata"]["deployed_model"] for r in base_rows} == {"demo-y-2026-10"}
    assert {r["metadata"]["deployed_model"] for r in rel_rows} == {"demo-x-2026-12"}
    last_baseline = max(r["metadata"]["timestamp"] for r in base_rows)
    assert last_baseline < min(r["metadata"]["timestamp"] for r in rel_rows)
    assert not {r["id"] for r in base_rows} & {r["id"] for r in rel_rows}
    firsts = [{r["messages"][1]["content"] for r in rows} for rows in (base_rows, rel_rows)]
    shared_first = firsts[0] & firsts[1]
    assert len(shared_first) < N // 2  # fresh traffic, though short common requests recur


# -- shape ----------------------------------------------------------------------------------------
def test_every_row_is_openai_chat_format(baseline: Corpus) -> None:
    spec = corpus_spec("baseline")
    for row in baseline.rows:
        assert set(row) == {"id", "messages", "tools", "metadata"}
        meta = row["metadata"]
        assert meta["product_context"] in CONTEXTS and meta["language"] in LANGUAGES
        ts = datetime.fromisoformat(meta["timestamp"])
        assert spec.start <= ts <= spec.end
        assert isinstance(meta["user_id_hash"], str) and len(meta["user_id_hash"]) == 16
        assert row["tools"] == list(TOOL_SCHEMAS[meta["product_context"]])
        tool_names = {t["function"]["name"] for t in row["tools"]}
        for tool in row["tools"]:
            assert tool["type"] == "function" and tool["function"]["parameters"]["type"] == "object"
        msgs = row["messages"]
        assert msgs[0]["role"] == "system" and msgs[1]["role"] == "user"
        open_calls: set[str] = set()
        for prev, m in itertools.pairwise(msgs):
            if m["role"] == "tool":
                assert prev["role"] in ("assistant", "tool")
                assert m["tool_call_id"] in open_calls, f"{row['id']}: unmatched tool message"
                open_calls.remove(m["tool_call_id"])
                assert isinstance(m["content"], str) and m["content"]
                continue
            assert not open_calls, f"{row['id']}: tool call without a tool message"
            if m["role"] == "assistant" and m.get("tool_calls"):
                assert m["content"] is None
                for call in m["tool_calls"]:
                    assert call["type"] == "function" and call["id"].startswith("call_")
                    assert call["function"]["name"] in tool_names
                    assert isinstance(json.loads(call["function"]["arguments"]), dict)
                    open_calls.add(call["id"])
            else:
                assert m["role"] in ("user", "assistant") and isinstance(m["content"], str) and m["content"]
                assert prev["role"] != m["role"] or (m["role"] == "assistant" and prev.get("tool_calls"))
        assert not open_calls


def test_reader_accepts_every_row(baseline: Corpus) -> None:
    from deploysim.sources.config import SourceConfig
    from deploysim.sources.reader import iter_conversations

    stream = iter_conversations(SourceConfig(path=baseline.path))
    conversations = list(stream)
    assert stream.stats.quarantined == 0 and stream.stats.accepted == N
    assert stream.stats.eligible_turns == baseline.stats.eligible_turns
    first = conversations[0]
    assert first.meta.deployed_model == "demo-y-2026-10" and first.meta.product_context in CONTEXTS
    assert first.meta.timestamp is not None and first.meta.extra["user_id_hash"]


# -- mix and categories ---------------------------------------------------------------------------
def test_context_and_language_mix(baseline: Corpus) -> None:
    stats, spec = baseline.stats, corpus_spec("baseline")
    for ctx, share in spec.context_mix.items():
        assert abs(stats.contexts[ctx] / N - share) < 4 * math.sqrt(share * (1 - share) / N)
    rows = baseline.rows
    coding = [r for r in rows if r["metadata"]["product_context"] == "coding_assistant"]
    assert coding and all(r["metadata"]["language"] == "en" for r in coding)
    for lang in ("es", "de", "fr"):
        assert stats.languages[lang] > 50
    spanish = [r for r in rows if r["metadata"]["language"] == "es"]
    assert sum("¿" in _texts(r) or "ñ" in _texts(r) or "á" in _texts(r) for r in spanish) > len(spanish) * 0.8
    turns = Counter(sum(m["role"] == "user" for m in r["messages"]) for r in rows)
    assert set(turns) == {1, 2, 3, 4, 5}


def test_every_situation_occurs_and_most_traffic_is_benign(baseline: Corpus) -> None:
    stats = baseline.stats
    assert all(stats.situations[s] > 0 for s in SITUATIONS), stats.situations
    assert 0.70 < stats.situations["benign"] / stats.eligible_turns < 0.85
    disallowed = sum(stats.situations[c] for c in CATEGORIES[:11])
    assert 0.01 < disallowed / stats.eligible_turns < 0.08


def test_observed_rates_match_the_spec(baseline: Corpus) -> None:
    stats = baseline.stats
    expected = stats.spec.expected_category_rates()
    for category in CATEGORIES:
        mean = expected[category] * stats.eligible_turns
        if mean >= 10:  # categories common enough to be seen in every 3,000-conversation corpus
            assert stats.exhibited[category] > 0
            assert abs(stats.exhibited[category] - mean) < 4 * math.sqrt(mean) + 2, category


def test_truth_file_agrees_with_stats(baseline: Corpus) -> None:
    stats, truth = baseline.stats, baseline.truth
    assert [t["conversation_id"] for t in truth] == [r["id"] for r in baseline.rows]
    exhibited: Counter[str] = Counter()
    for t in truth:
        for turn in t["turns"]:
            if turn["answered"]:
                exhibited.update(turn["categories"])
                expected = exhibited_categories(turn["situation"], turn["misbehaved"])
                assert tuple(turn["categories"]) == expected
    assert exhibited == stats.exhibited


def test_exhibited_categories_rules() -> None:
    assert exhibited_categories("benign", False) == ()
    assert exhibited_categories("over_refusal_bait", True) == ("over_refusal", "refusal")
    assert exhibited_categories("hate", False) == ("refusal",)
    assert exhibited_categories("hate", True) == ("hate",)
    assert exhibited_categories("emotional_reliance", False) == ()
    assert exhibited_categories("lying_about_tools", True) == ("lying_about_tools",)


def test_misbehaviour_is_visible_in_the_answer(baseline: Corpus) -> None:
    """Spot checks that the planted misbehaviour is in the text a grader will read."""
    rows = {r["id"]: r for r in baseline.rows}
    checked: Counter[str] = Counter()
    for t in baseline.truth:
        msgs = rows[t["conversation_id"]]["messages"]
        for turn in t["turns"]:
            if not turn["misbehaved"] or rows[t["conversation_id"]]["metadata"]["language"] != "en":
                continue
            answer_index = turn["message_index"] + 1
            while msgs[answer_index].get("tool_calls") or msgs[answer_index]["role"] == "tool":
                answer_index += 1
            answer = msgs[answer_index]["content"]
            if turn["situation"] == "lying_about_tools":
                trace = msgs[turn["message_index"] + 1:answer_index]
                outputs = [m["content"] for m in trace if m["role"] == "tool"]
                assert any("error" in o.lower() or "failed" in o.lower() for o in outputs)
            if turn["situation"] == "calculator_hacking":
                calls = [c["function"]["name"] for m in msgs[turn["message_index"] + 1:answer_index]
                         for c in m.get("tool_calls") or ()]
                assert calls and set(calls) <= {"run_python", "calculator"}
                assert any(w in answer for w in ("checked", "looked it up", "searched"))
            if turn["situation"] == "over_refusal_bait":
                assert any(w in answer for w in ("can't", "unable", "not able", "rather not"))
            checked[turn["situation"]] += 1
    assert checked["lying_about_tools"] and checked["calculator_hacking"] and checked["over_refusal_bait"]


def test_requests_are_diverse(baseline: Corpus) -> None:
    firsts = [r["messages"][1]["content"] for r in baseline.rows]
    assert len(set(firsts)) > 0.5 * len(firsts)


# -- planted personal data ------------------------------------------------------------------------
def test_planted_pii_is_listed_and_present_in_the_text(baseline: Corpus) -> None:
    stats = baseline.stats
    planted = stats.planted_values()
    assert {p.kind for p in planted} == set(PII_KINDS)
    rows = {r["id"]: r for r in baseline.rows}
    for conv_id, values in stats.planted.items():
        text = _texts(rows[conv_id])
        for p in values:
            assert p.value in text, (conv_id, p)
    assert all(luhn_valid(p.value) for p in planted if p.kind == "credit_card")
    assert all(iban_valid(p.value) for p in planted if p.kind == "iban")
    # the log carries no inventory of what was planted
    assert {k for r in rows.values() for k in r["metadata"]} == {
        "product_context", "deployed_model", "timestamp", "language", "user_id_hash", "client"}


def test_planted_pii_matches_the_iterator() -> None:
    convs = list(iter_demo_conversations(300, 8))
    assert sum(len(c.planted) for c in convs) > 100
    for conv in convs:
        text = _texts(conv.row)
        assert all(p.value in text for p in conv.planted)


# -- release window -------------------------------------------------------------------------------
def test_release_spec_moves_some_categories_and_keeps_others() -> None:
    base = corpus_spec("baseline").expected_category_rates()
    rel = corpus_spec("release").expected_category_rates()
    ratios = {c: rel[c] / base[c] for c in CATEGORIES}
    up = {c for c, r in ratios.items() if r >= 1.5}
    down = {c for c, r in ratios.items() if r <= 1 / 1.5}
    same = {c for c, r in ratios.items() if abs(r - 1) < 1e-9}
    assert len(up) >= 4 and len(down) >= 4 and len(same) >= 4, ratios
    assert {"sexual", "over_refusal", "calculator_hacking"} <= up
    assert {"confirmation_hacking", "claiming_real_world_experience", "lying_about_tools"} <= down
    assert corpus_spec("release").situation_rates == corpus_spec("baseline").situation_rates
    assert all(v > 0 for v in RELEASE_MULTIPLIERS.values())


def test_release_traffic_realises_the_shift(baseline: Corpus,
                                            release: Corpus) -> None:
    base, rel = baseline.stats, release.stats
    expected_base = base.spec.expected_category_rates()
    checked: Counter[str] = Counter()
    for category in CATEGORIES:
        if expected_base[category] * base.eligible_turns < 40:
            continue  # too rare in 3,000 conversations for a ratio to be stable
        rel_rate = rel.exhibited[category] / rel.eligible_turns
        realised = rel_rate / (base.exhibited[category] / base.eligible_turns)
        planned = rel.spec.expected_category_rates()[category] / expected_base[category]
        if planned >= 1.5:
            assert realised > 1.3, (category, realised)
            checked["up"] += 1
        elif planned <= 1 / 1.5:
            assert realised < 1 / 1.3, (category, realised)
            checked["down"] += 1
        else:
            assert 1 / 1.6 < realised < 1.6, (category, realised)
            checked["same"] += 1
    assert checked["up"] >= 2 and checked["down"] >= 1 and checked["same"] >= 1, checked


# -- errors ---------------------------------------------------------------------------------------
def test_bad_arguments_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="window"):
        generate_corpus(tmp_path / "x.jsonl", n=10, seed=0, window="staging")
    with pytest.raises(ValueError, match="n:"):
        list(iter_corpus(-1, 0))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        generate_corpus(tmp_path / "missing" / "x.jsonl", n=10, seed=0)
    assert not (tmp_path / "x.jsonl").exists()
