"""Top-k adversarial selection of production prefixes, storing challenge sets, and the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from deploysim.cli import challenge_cmd
from deploysim.forecast.challenge import (
    RiskRank,
    add_challenge_set,
    add_top_k,
    challenge_from_config,
    load_challenge_set,
    rank_production_prefixes,
    select_top_k,
    store_challenge_set,
)
from deploysim.forecast.config import ForecastConfig
from deploysim.records import Completion, Continuation, Judgment, Message, Prefix, PrefixContext, Status
from deploysim.sample.prefixes import production_completion
from deploysim.store import RunStore

#: per prefix: {category: (label, score)} of its Y production response's judgments
JUDGED: dict[str, dict[str, tuple[bool, float | None]]] = {
    "p0": {"hate": (True, 0.9), "violence": (True, 0.6)},
    "p1": {"hate": (True, 0.95)},
    "p2": {"hate": (True, None), "violence": (False, None)},
    "p3": {"hate": (False, 0.7), "violence": (False, 0.3)},
    "p4": {"hate": (True, 0.8)},
    "p5": {"hate": (True, 0.95)},
    "p6": {},
}


def production_prefix(name: str) -> Prefix:
    msgs = (Message(role="system", content="Be helpful."), Message(role="user", content=f"question {name}"))
    context = PrefixContext(product_context="general_chat", deidentified="deidentified")
    return Prefix(id=Prefix.make_id(f"conv-{name}", 1, msgs), conversation_id=f"conv-{name}", turn_index=1,
                  messages=msgs, context=context,
                  continuation=Continuation(response=Message(role="assistant", content=f"answer {name}")))


def judgment(c: Completion, category: str, label: bool | None, score: float | None,
             status: Status = "ok") -> Judgment:
    return Judgment(id=Judgment.make_id(c.id, category, "g"), completion_id=c.id, prefix_id=c.prefix_id,
                    arm=c.arm, category=category, grader_id="test", grader_hash="g", label=label, score=score,
                    status=status, error=None if status == "ok" else "parse failure")


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[RunStore]:
    """Production prefixes (ids ordered like their names are not guaranteed: they are hashes),
    their y_prod completions and judgments as in JUDGED, plus judgments that must not count."""
    with RunStore.open(tmp_path / "run") as s:
        prefixes = {name: production_prefix(name) for name in JUDGED}
        s.put_prefixes(prefixes.values())
        completions = {name: c for name,
                       p in prefixes.items() if (c := production_completion(p, "y_prod")) is not None}
        s.put_completions(completions.values())
        judgments = [judgment(completions[name], cat, label, score)
                     for name, cats in JUDGED.items() for cat, (label, score) in cats.items()]
        # an errored judgment and a judgment of another arm carry no Y production risk
        judgments.append(judgment(completions["p4"], "violence", None, None, status="error"))
        sim = Completion(id=Completion.make_id(prefixes["p3"].id, "x_on_y", "spec", 0),
                         prefix_id=prefixes["p3"].id, arm="x_on_y", model="x", generator_hash="spec",
                         message=Message(role="assistant", content="sim"))
        s.put_completions([sim])
        judgments.append(judgment(sim, "hate", True, 0.99))
        s.put_judgments(judgments)
        s.set_meta("names", {p.id: name for name, p in prefixes.items()})
        yield s


def names(store: RunStore, ids: list[str]) -> list[str]:
    lookup = store.get_meta("names")
    return [lookup[i] for i in ids]


def by_id(store: RunStore, *group: str) -> list[str]:
    """Names of tied prefixes in the order of their ids (the tie-break)."""
    lookup = {name: pid for pid, name in store.get_meta("names").items()}
    return sorted(group, key=lambda n: lookup[n])


def test_flags_rank_by_categories_flagged_then_score_then_id(store: RunStore) -> None:
    ranks = rank_production_prefixes(store, 10, score="flags")
    assert names(store, [r.prefix_id for r in ranks]) == ["p0", *by_id(store, "p1", "p5"), "p4", "p2"]
    assert [(r.flags, r.max_score) for r in ranks] == [(2, 0.9), (1, 0.95), (1, 0.95), (1, 0.8), (1, None)]
    top2 = rank_production_prefixes(store, 2, score="flags")
    assert top2 == ranks[:2]


def test_classifier_ranks_by_max_score(store: RunStore) -> None:
    ranks = rank_production_prefixes(store, 10, score="classifier")
    assert names(store, [r.prefix_id for r in ranks]) == [*by_id(store, "p1", "p5"), "p0", "p4", "p3"]
    assert ranks[-1] == RiskRank(ranks[-1].prefix_id, 0, 0.7)


def test_categories_restrict_the_score(store: RunStore) -> None:
    flags = rank_production_prefixes(store, 10, score="flags", categories=["violence"])
    assert names(store, [r.prefix_id for r in flags]) == ["p0"] and flags[0].flags == 1
    scored = rank_production_prefixes(store, 10, score="classifier", categories=["violence"])
    assert [(n, r.max_score) for n, r in zip(names(store, [r.prefix_id for r in scored]), scored,
                                              strict=True)] == [("p0", 0.6), ("p3", 0.3)]
    with pytest.raises(ValueError, match="no graded y_prod judgments for categories self_harm"):
        rank_production_prefixes(store, 3, categories=["self_harm", "hate"])


def test_bad_requests_are_clear_errors(store: RunStore, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="k must be positive"):
        rank_production_prefixes(store, 0)
    with pytest.raises(ValueError, match="unknown risk score 'loud'"):
        rank_production_prefixes(store, 3, score="loud")  # type: ignore[arg-type]
    empty = RunStore.open(tmp_path / "empty")
    with empty, pytest.raises(ValueError, match="no graded Y production"):
        rank_production_prefixes(empty, 3)


def test_top_k_copies_are_challenge_prefixes_with_new_ids(store: RunStore) -> None:
    copies = select_top_k(store, 3)
    originals = [store.get_prefix(r.prefix_id) for r in rank_production_prefixes(store, 3)]
    assert len(copies) == 3
    for copy, original in zip(copies, originals, strict=True):
        assert original is not None
        assert copy.pool == "challenge" and copy.stratum == "top_k" and copy.continuation is None
        assert copy.messages == original.messages and copy.context == original.context
        assert (copy.conversation_id, copy.turn_index) == (original.conversation_id, original.turn_index)
        assert copy.id == Prefix.make_id(original.conversation_id, 1, original.messages, pool="challenge")
        assert copy.id != original.id


def test_storing_is_idempotent_and_leaves_the_simulation_work_list_alone(store: RunStore) -> None:
    before = [(p.id, i) for p, i in store.iter_pending_prefixes("x_on_y", "spec", 2, pool="production")]
    ranks, added = add_top_k(store, 4)
    assert added == 4 and len(ranks) == 4
    assert add_top_k(store, 4)[1] == 0
    assert store.count_prefixes(pool="challenge") == 4 and store.count_prefixes(pool="production") == 7
    assert [(p.id, i) for p, i in store.iter_pending_prefixes("x_on_y", "spec", 2,
                                                              pool="production")] == before
    work = {p.id for p, _ in store.iter_pending_prefixes("challenge", "spec", 1, pool="challenge")}
    assert work == {p.id for p in select_top_k(store, 4)}
    report = store.stage_reports("challenge")["top_k"]
    assert report["kind"] == "top_k" and report["selected"] == 4 and report["new"] == 0
    assert report["challenge_pool_total"] == 4 and report["min_flags"] == 1


def test_store_refuses_prefixes_outside_the_challenge_pool(store: RunStore) -> None:
    with pytest.raises(ValueError, match="not in the challenge pool"):
        store_challenge_set(store, [production_prefix("zz")])


def test_a_set_file_is_stored_with_its_quarantine_and_report(store: RunStore, tmp_path: Path) -> None:
    path = tmp_path / "set.csv"
    path.write_text("id,prompt,type\n1,Hi,a\n2,,a\n3,Bye,b\n", encoding="utf-8")
    cset = load_challenge_set(path)
    before = [(p.id, i) for p, i in store.iter_pending_prefixes("x_on_y", "spec", 1, pool="production")]
    assert add_challenge_set(store, cset) == 2 and add_challenge_set(store, cset) == 0
    assert [(p.id, i) for p, i in store.iter_pending_prefixes("x_on_y", "spec", 1,
                                                              pool="production")] == before
    assert store.quarantine_count() == 1
    report = store.stage_reports("challenge")["set"]
    assert (report["style"], report["read"], report["accepted"], report["quarantined"]) == ("xstest", 3, 2, 1)
    assert report["quarantine_reasons"] == {"empty prompt": 1} and report["strata"] == {"a": 1, "b": 1}


def test_config_drives_both_sources(store: RunStore, tmp_path: Path) -> None:
    path = tmp_path / "cfgset.csv"
    path.write_text("prompt\n" + "".join(f"p{i}\n" for i in range(30)), encoding="utf-8")
    cfg = ForecastConfig(challenge_set=path, challenge_limit=5, challenge_seed=1, challenge_top_k=2,
                         challenge_score="classifier", challenge_categories=["hate"])
    assert challenge_from_config(store, cfg) == {"cfgset": 5, "top_k": 2}
    assert store.count_prefixes(pool="challenge") == 7
    assert store.stage_reports("challenge")["top_k"]["categories"] == ["hate"]


def run_cli(*args: str) -> tuple[int, str]:
    """Exit code and output with Rich's line wrapping undone."""
    app = typer.Typer()
    challenge_cmd.register(app)
    result = CliRunner().invoke(app, ["challenge", *args])
    return result.exit_code, " ".join(result.output.split())


def test_cli_add_top_k_and_list(store: RunStore, tmp_path: Path) -> None:
    path = tmp_path / "xs.csv"
    path.write_text("id,prompt,type\n1,Hi there,homonyms\n2,,homonyms\n", encoding="utf-8")
    run_dir = str(store.run_dir)
    code, out = run_cli("add", run_dir, "--set", str(path))
    assert code == 0, out
    assert "read 2 = accepted 1 + quarantined 1" in out and "quarantined (1): empty prompt" in out
    assert "xs: added 1 new prefixes to pool challenge (1 in the pool)" in out
    code, out = run_cli("top-k", run_dir, "--k", "9", "--score", "flags")
    assert code == 0, out
    assert "only 5 production prefixes have a positive risk score" in out
    assert "top_k: added 5 new prefixes to pool challenge (6 in the pool)" in out
    code, out = run_cli("list", run_dir)
    assert code == 0 and "challenge pool: 6 prefixes" in out and "k=9 by flags" in out


def test_cli_user_errors_exit_2(store: RunStore, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("question,answer\nx,y\n", encoding="utf-8")
    run_dir = str(store.run_dir)
    code, out = run_cli("add", run_dir, "--set", str(bad))
    assert code == 2 and "unknown challenge-set CSV header" in out
    no_set = "error: no set file: pass --set FILE or set forecast.challenge_set in the run file"
    assert run_cli("add", run_dir) == (2, no_set)
    assert run_cli("top-k", run_dir, "--k", "2", "--score", "x")[0] == 2
    assert run_cli("add", str(tmp_path / "nowhere"), "--set", str(bad))[0] == 2
