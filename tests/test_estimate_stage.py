"""The estimate stage on a run store: records, JSON, grader-hash guard, order invariance, CLI."""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from deploysim.cli.app import app
from deploysim.cli.common import console
from deploysim.estimate.comparisons import (
    PairedTable,
    fisher_exact_p,
    mcnemar_p,
    paired_rate_ratio,
    rate_ratio,
)
from deploysim.estimate.config import EstimateConfig
from deploysim.estimate.floor import measurement_floor
from deploysim.estimate.intervals import jeffreys_interval, wilson_interval
from deploysim.estimate.stage import (
    ESTIMATES_JSON,
    ArmPlan,
    EstimateInputs,
    EstimateReport,
    MixedGraderError,
    estimate,
)
from deploysim.records import Completion, Judgment, Message, Prefix
from deploysim.store import RunStore

ARMS = ("x_on_y", "y_on_y", "y_prod")
RATES = {"hate": {"x_on_y": 0.15, "y_on_y": 0.05, "y_prod": 0.05},
         "self_harm": {"x_on_y": 0.04, "y_on_y": 0.04, "y_prod": 0.03}}
GRADERS = {"hate": "g-hate", "self_harm": "g-self-harm"}


Records = tuple[list[Prefix], list[Completion], list[Judgment]]
COMPARISONS = (("x_on_y", "y_on_y", "mcnemar"), ("x_on_y", "y_prod", "fisher"))


def estimate_run(store: RunStore, cfg: EstimateConfig, plans: tuple[ArmPlan,
                                                                    ...] | None = None) -> EstimateReport:
    """The stage on the three arms as the assembler would give them (nothing planned beyond the store)."""
    return estimate(EstimateInputs(config=cfg, arms=plans or tuple(ArmPlan(a) for a in ARMS),
                                   comparisons=COMPARISONS), store)


def build_records(n_prefixes: int = 300, seed: int = 0) -> Records:
    """Seeded run: three arms, two categories, a few generation and grading failures."""
    rng = random.Random(seed)
    prefixes, completions, judgments = [], [], []
    for i in range(n_prefixes):
        msgs = (Message(role="user", content=f"question {i}"),)
        prefix = Prefix(id=Prefix.make_id(f"c{i}", 0, msgs), conversation_id=f"c{i}", turn_index=0,
                        messages=msgs)
        prefixes.append(prefix)
        for arm in ARMS:
            failed = arm == "x_on_y" and i < 3
            c = Completion(id=Completion.make_id(prefix.id, arm, "spec", 0), prefix_id=prefix.id, arm=arm,
                           # type: ignore[arg-type]
                           model="m", generator_hash="spec", status="error" if failed else "ok",
                           error="timeout" if failed else None,
                           message=None if failed else Message(role="assistant", content="a"))
            completions.append(c)
            if failed:
                continue
            for category, rates in RATES.items():
                grading_error = category == "hate" and arm == "y_prod" and i % 100 == 7
                judgments.append(Judgment(
                    id=Judgment.make_id(c.id, category, GRADERS[category]), completion_id=c.id,
                    prefix_id=prefix.id, arm=arm, category=category, grader_id=f"judge:{category}",
                    # type: ignore[arg-type]
                    grader_hash=GRADERS[category], status="error" if grading_error else "ok",
                    label=None if grading_error else rng.random() < rates[arm],
                    error="unparseable" if grading_error else None))
    return prefixes, completions, judgments


def fill(store: RunStore, records: Records) -> None:
    prefixes, completions, judgments = records
    store.put_prefixes(prefixes)
    store.put_completions(completions)
    store.put_judgments(judgments)
    store.put_grader_validation("g-hate", "hate", "human-labels",
                                {"tp": 45, "fp": 6, "tn": 194, "fn": 5})


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[RunStore]:
    with RunStore.open(tmp_path / "run") as s:
        fill(s, build_records())
        yield s


def tally(judgments: list[Judgment], category: str, arm: str) -> tuple[int, int, int]:
    mine = [j for j in judgments if j.category == category and j.arm == arm]
    ok = [j for j in mine if j.status == "ok"]
    return len(ok), sum(bool(j.label) for j in ok), len(mine) - len(ok)


def test_estimates_match_the_statistics_functions(store: RunStore) -> None:
    _, _, judgments = build_records()
    report = estimate_run(store, EstimateConfig())
    assert len(report.estimates) == 6
    for category in RATES:
        for arm in ARMS:
            est = report.estimate(category, arm)
            assert est is not None
            n, k, grading_errors = tally(judgments, category, arm)
            generation_errors = 3 if arm == "x_on_y" else 0
            assert (est.n, est.k, est.failures) == (n, k, grading_errors + generation_errors)
            assert est.extra["grading_errors"] == grading_errors
            assert est.rate == k / n and est.wilson == wilson_interval(k, n)
            # the floor states the validated grader's false-positive rate and sensitivity (hate)
            fp, se = (1 - 194 / 200, 45 / 50) if category == "hate" else (0.0, 1.0)
            assert est.jeffreys == jeffreys_interval(k, n)
            assert est.floor == pytest.approx(measurement_floor(n, 0.95, fp, se))
            assert (est.corrected_rate is not None) == (category == "hate")
    hate = report.estimate("hate", "x_on_y")
    assert hate is not None and hate.corrected_interval is not None
    assert hate.extra["correction"]["tp"] == 45
    assert hate.corrected_interval[0] <= hate.corrected_rate <= hate.corrected_interval[1]  # type: ignore[operator]


def test_comparisons_use_fisher_and_paired_mcnemar(store: RunStore) -> None:
    _, _, judgments = build_records()
    report = estimate_run(store, EstimateConfig(alpha=0.1, benjamini_hochberg=False))
    for category in RATES:
        n_a, k_a, _ = tally(judgments, category, "x_on_y")
        n_b, k_b, _ = tally(judgments, category, "y_prod")
        fisher = report.comparison(category, "y_prod")
        assert fisher is not None and fisher.test == "fisher"
        assert fisher.p_value == pytest.approx(fisher_exact_p(k_a, n_a, k_b, n_b))
        assert fisher.ratio == pytest.approx(rate_ratio(k_a, n_a, k_b, n_b).ratio)
        # the ratio interval is at the test's level 1 − α
        assert fisher.ratio_interval == pytest.approx(rate_ratio(k_a, n_a, k_b, n_b, 0.9).interval)
        assert fisher.significant == (fisher.p_value <= 0.1)
        labels = {(j.prefix_id, j.arm): j.label for j in judgments
                  if j.category == category and j.status == "ok"}
        pairs = [(labels[(pid, "x_on_y")], labels[(pid, "y_on_y")])
                 for pid, arm in labels if arm == "x_on_y" and (pid, "y_on_y") in labels]
        table = PairedTable.from_pairs((bool(a), bool(b)) for a, b in pairs)
        paired = report.comparison(category, "y_on_y")
        assert paired is not None and paired.test == "mcnemar" and paired.extra["pairs"] == table.n
        assert paired.p_value == pytest.approx(mcnemar_p(table.only_a, table.only_b, "midp"))
        assert paired.ratio == pytest.approx(paired_rate_ratio(table).ratio)
    assert report.comparison("hate", "y_prod").significant  # type: ignore[union-attr]  # 0.15 vs 0.05


def test_results_go_to_the_store_and_json_and_reruns_are_idempotent(store: RunStore) -> None:
    report = estimate_run(store, EstimateConfig())
    assert report.json_path == store.run_dir / ESTIMATES_JSON
    payload = orjson.loads(report.json_path.read_bytes())
    assert [e["id"] for e in payload["estimates"]] == [e.id for e in report.estimates]
    assert len(payload["comparisons"]) == 4 and payload["config"]["alpha"] == 0.1
    again = estimate_run(store, EstimateConfig())
    assert store.estimates() == sorted(again.estimates, key=lambda e: (e.category, e.arm))
    assert len(store.comparisons()) == 4
    assert store.stage_reports("estimate")["summary"]["estimates"] == 6


def test_benjamini_hochberg_on_request(store: RunStore) -> None:
    report = estimate_run(store, EstimateConfig(benjamini_hochberg=True, alpha=0.1))
    fisher = sorted((c for c in report.comparisons if c.test == "fisher"), key=lambda c: c.p_value)
    assert fisher[0].p_adjusted == pytest.approx(min(1.0, 2 * fisher[0].p_value, fisher[1].p_value))
    for c in report.comparisons:
        assert c.p_adjusted is not None and c.significant == (c.p_adjusted <= 0.1)


def test_mixed_grader_hashes_raise_unless_pinned(store: RunStore) -> None:
    c = next(store.iter_completions(arm="x_on_y", status="ok"))
    store.put_judgments([Judgment(id=Judgment.make_id(c.id, "hate", "g-hate-v2"), completion_id=c.id,
                                  prefix_id=c.prefix_id, arm="x_on_y", category="hate",
                                  grader_id="judge:hate", grader_hash="g-hate-v2", label=True)])
    with pytest.raises(MixedGraderError, match=r"'hate', arm x_on_y: judgments from 2 different graders"):
        estimate_run(store, EstimateConfig())
    pinned = estimate_run(store, EstimateConfig(grader_hashes={"hate": "g-hate"}))
    assert {e.grader_hash for e in pinned.estimates if e.category == "hate"} == {"g-hate"}
    with pytest.raises(MixedGraderError, match="but y_on_y has judgments only from g-hate"):
        estimate_run(store, EstimateConfig(grader_hashes={"hate": "g-hate-v2"}))
    with pytest.raises(MixedGraderError, match="pins 'hate' to 'nope'"):
        estimate_run(store, EstimateConfig(grader_hashes={"hate": "nope"}))


def run_estimates(records: Records) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory() as tmp, RunStore.open(Path(tmp) / "run") as s:
        fill(s, records)
        report = estimate_run(s, EstimateConfig())
        return [r.model_dump() for r in [*report.estimates, *report.comparisons]]


@settings(max_examples=4, deadline=None)
@given(st.randoms(use_true_random=False))
def test_estimates_are_invariant_to_row_order(rnd: random.Random) -> None:
    prefixes, completions, judgments = build_records(n_prefixes=120, seed=3)
    baseline = run_estimates((prefixes, completions, judgments))
    for rows in (prefixes, completions, judgments):
        rnd.shuffle(rows)
    assert run_estimates((prefixes, completions, judgments)) == baseline


def test_estimate_command(tmp_path: Path, store: RunStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "width", 220)  # the table is wide; CliRunner's default is 80 columns
    result = CliRunner().invoke(app, ["estimate", str(store.run_dir), "--bh"])
    assert result.exit_code == 0, result.output
    assert "hate" in result.output and "self_harm" in result.output and "X→Y" in result.output
    assert (store.run_dir / ESTIMATES_JSON).exists()
    config = tmp_path / "run.toml"
    config.write_text('[run]\ndir = "run"\n\n[estimate]\nalpha = 0.05\n')
    from_config = CliRunner().invoke(app, ["estimate", str(config)])
    assert from_config.exit_code == 0, from_config.output
    assert "α = 0.05" in from_config.output
    missing = CliRunner().invoke(app, ["estimate", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "neither a run file" in " ".join(missing.output.split())


def test_pending_and_failed_work_never_disappears_from_the_table(store: RunStore) -> None:
    """A planned arm with nothing graded still gets a row, and work not yet done is counted."""
    store.put_stage_report("grade", "hate", {"grader_hash": "g-hate"})
    plans = (ArmPlan("x_on_y", planned=310, generator_hash="spec"), ArmPlan("y_on_y"), ArmPlan("y_prod"),
             ArmPlan("x_prod_sim", planned=50, generator_hash="other"))
    report = estimate_run(store, EstimateConfig(), plans)
    x = report.estimate("hate", "x_on_y")
    assert x is not None and x.pending == 10 and x.failures == 3  # 310 planned, 297 ok + 3 errors stored
    ghost = report.estimate("hate", "x_prod_sim")
    assert ghost is not None and (ghost.n, ghost.rate, ghost.pending) == (0, None, 50)
    assert any("x_prod_sim: no graded items" in note for note in report.notes)


def test_a_changed_generator_is_not_mixed_into_the_arm(store: RunStore) -> None:
    p = next(store.iter_prefixes())
    old = Completion(id=Completion.make_id(p.id, "x_on_y", "old-spec", 0), prefix_id=p.id, arm="x_on_y",
                     model="m", generator_hash="old-spec", message=Message(role="assistant", content="b"))
    store.put_completions([old])
    store.put_judgments([Judgment(id=Judgment.make_id(old.id, "hate", "g-hate"), completion_id=old.id,
                                  prefix_id=p.id, arm="x_on_y", category="hate", grader_id="judge:hate",
                                  grader_hash="g-hate", label=True)])
    everything = estimate_run(store, EstimateConfig())
    current = estimate_run(store, EstimateConfig(), (ArmPlan("x_on_y", generator_hash="spec"),
                                                     ArmPlan("y_on_y"),
                                                     ArmPlan("y_prod")))
    assert everything.estimate("hate",
                               "x_on_y").n == current.estimate("hate",
                                                               "x_on_y").n + 1  # type: ignore[union-attr]
