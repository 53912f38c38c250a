"""Rates under the sampling design, end to end: the sampler records what a design weight needs,
and the estimate stage turns a quota or capped sample into the deployment's rate (or refuses
to forecast from it), and several samples per prefix into a clustered interval."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from deploysim.estimate.config import EstimateConfig
from deploysim.estimate.intervals import wilson_interval
from deploysim.estimate.stage import ArmPlan, EstimateInputs, estimate
from deploysim.estimate.weighting import design_from_report
from deploysim.forecast.model import estimate_counts
from deploysim.records import Completion, Judgment, Message, Prefix
from deploysim.registry import Registry
from deploysim.sample.config import SampleConfig
from deploysim.sample.sampler import sample_prefixes
from deploysim.sample.stage import SampleInputs, sample_to_store
from deploysim.sources.config import SourceConfig
from deploysim.store.db import RunStore

FLAG = "zebra"  # the "misbehaviour": a word the grader below looks for


def conversation(i: int, turns: list[str], context: str) -> bytes:
    msgs: list[dict[str, Any]] = []
    for t, text in enumerate(turns):
        msgs += [{"role": "user", "content": f"c{i} turn {t}: {text}"},
                 {"role": "assistant", "content": f"answer {i}.{t}"}]
    return orjson.dumps({"id": f"c{i}", "model": "prod-y", "messages": msgs,
                         "metadata": {"product_context": context}})


def write(path: Path, rows: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(rows) + b"\n")
    return path


def grade_production(store: RunStore, category: str = "zebra") -> None:
    """Judge every stored production answer's prefix: positive when the user turn has the flag."""
    judgments = []
    for c in store.iter_completions(arm="y_prod"):
        prefix = store.get_prefix(c.prefix_id)
        assert prefix is not None
        judgments.append(Judgment(id=Judgment.make_id(c.id, category, "g"), completion_id=c.id,
                                  prefix_id=c.prefix_id, arm="y_prod", category=category, grader_id="flag",
                                  grader_hash="g", label=FLAG in prefix.messages[-1].content))
    store.put_judgments(judgments)


def estimate_production(store: RunStore) -> Any:
    design = design_from_report(store.stage_reports("sample").get("report"))
    report = estimate(EstimateInputs(config=EstimateConfig(), arms=[ArmPlan("y_prod")], comparisons=(),
                                     design=design), store)
    return report.estimate("zebra", "y_prod"), report.notes


def sample_into(store: RunStore, path: Path, cfg: SampleConfig) -> None:
    sample_to_store(SampleInputs(sources=[SourceConfig(path=path)], config=cfg,
                                 formats=Registry.discover().formats, transform=None,
                                 quarantine_dir=store.run_dir / "quarantine", production_arm="y_prod"), store)


@pytest.mark.parametrize("split", [False, True])
def test_the_sampler_records_each_conversations_usable_turns(tmp_path: Path, split: bool) -> None:
    lengths = [1 + i % 6 for i in range(60)]
    path = write(tmp_path / "t.jsonl", [conversation(i, ["hi"] * m, "chat") for i, m in enumerate(lengths)])
    span = max(1, path.stat().st_size // 4) if split else 1 << 40
    sample = sample_prefixes([SourceConfig(path=path)], SampleConfig(n=40, seed=3, cap_per_conversation=2),
                             span_bytes=span, workers=1)
    got = {p.conversation_id: p.usable_turns for p in sample}
    assert len(got) > 10 and all(got[f"c{i}"] == lengths[i] for i in range(60) if f"c{i}" in got)
    assert sample.report.cap_per_conversation == 2 and not sample.report.explicit_quotas


def test_a_quota_sample_is_weighted_back_to_the_deployment(tmp_path: Path) -> None:
    """10% of traffic is a context where the flag is common; quotas take both contexts equally.
    The unweighted rate describes that mix (about 0.1); the weighted one the deployment (0.029)."""
    rng = random.Random(5)
    rows, flags = [], 0
    for i in range(4000):
        rare = i % 10 == 0
        flagged = rng.random() < (0.2 if rare else 0.01)
        flags += flagged
        rows.append(conversation(i, [f"text {FLAG}" if flagged else "text"], "rare" if rare else "common"))
    truth = flags / 4000
    path = write(tmp_path / "traffic.jsonl", rows)
    with RunStore.open(tmp_path / "run") as store:
        sample_into(store, path, SampleConfig(stratify_by="product_context", quotas={"rare": 300, "common": 300},
                                              seed=1))
        grade_production(store)
        est, notes = estimate_production(store)
    design = est.extra["design"]
    assert design["method"] == "weighted" and design["unweighted_rate"] > 0.08
    assert est.wilson[0] <= truth <= est.wilson[1] and abs(est.rate - truth) < 0.01
    assert not est.wilson[0] <= design["unweighted_rate"] <= est.wilson[1]
    assert any("not self-weighting" in n and "design-weighted" in n for n in notes)
    # the forecast takes the effective counts, whose rate is the weighted one
    counts = estimate_counts(est)
    assert counts.n == round(design["effective_n"]) and abs(counts.k / counts.n - est.rate) < 0.005


def test_a_cap_per_conversation_is_undone_by_the_weights(tmp_path: Path) -> None:
    """Long conversations flag more; a cap of 1 under-represents them."""
    rng = random.Random(8)
    rows, flags, turns_total = [], 0, 0
    for i in range(1500):
        m = 1 + (i % 8)
        turns = []
        for _ in range(m):
            flagged = rng.random() < (0.3 if m >= 6 else 0.02)
            flags += flagged
            turns.append(f"text {FLAG}" if flagged else "text")
        turns_total += m
        rows.append(conversation(i, turns, "chat"))
    truth = flags / turns_total
    path = write(tmp_path / "traffic.jsonl", rows)
    with RunStore.open(tmp_path / "run") as store:
        sample_into(store, path, SampleConfig(n=900, seed=2, cap_per_conversation=1))
        grade_production(store)
        est, _ = estimate_production(store)
    assert est.extra["design"]["method"] == "weighted"
    assert est.extra["design"]["unweighted_rate"] < truth - 0.04  # the capped mix has fewer long ones
    assert est.wilson[0] <= truth <= est.wilson[1]


def test_without_what_a_weight_needs_the_rate_is_marked_and_never_forecast(tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", [conversation(i, ["a", f"b {FLAG}", "c"], "chat") for i in range(50)])
    with RunStore.open(tmp_path / "run") as store:
        sample_into(store, path, SampleConfig(n=40, seed=2, cap_per_conversation=1))
        # a run sampled before usable turns were recorded
        store.replace_prefixes(p.model_copy(update={"usable_turns": None}) for p in list(store.iter_prefixes()))
        grade_production(store)
        est, notes = estimate_production(store)
    assert "refused" in est.extra["design"] and est.rate == est.k / est.n
    assert any("cannot be weighted" in n for n in notes)
    with pytest.raises(ValueError, match="not the deployment"):
        estimate_counts(est)


def test_several_samples_per_prefix_are_one_cluster(tmp_path: Path) -> None:
    """Two samples per prefix with identical labels carry the information of one: the clustered
    interval is as wide as the interval of the prefixes, not of the items."""
    with RunStore.open(tmp_path / "run") as store:
        prefixes, completions, judgments = [], [], []
        for i in range(400):
            msgs = (Message(role="user", content=f"q{i}"),)
            p = Prefix(id=Prefix.make_id(f"c{i}", 0, msgs), conversation_id=f"c{i}", turn_index=0, messages=msgs)
            prefixes.append(p)
            for s in range(2):
                c = Completion(id=Completion.make_id(p.id, "x_on_y", "gen", s), prefix_id=p.id, arm="x_on_y",
                               model="m", generator_hash="gen", sample_index=s,
                               message=Message(role="assistant", content="a"))
                completions.append(c)
                judgments.append(Judgment(id=Judgment.make_id(c.id, "zebra", "g"), completion_id=c.id,
                                          prefix_id=p.id, arm="x_on_y", category="zebra", grader_id="x",
                                          grader_hash="g", label=i % 10 == 0))
        store.put_prefixes(prefixes)
        store.put_completions(completions)
        store.put_judgments(judgments)
        report = estimate(EstimateInputs(config=EstimateConfig(), arms=[ArmPlan("x_on_y", 800, "gen")],
                                         comparisons=()), store)
    est = report.estimate("zebra", "x_on_y")
    assert est is not None and est.n == 800 and est.extra["design"]["method"] == "clustered"
    assert est.extra["design"]["effective_n"] == pytest.approx(400, rel=0.01)
    per_prefix = wilson_interval(40, 400)
    assert est.wilson == pytest.approx(per_prefix, rel=0.02)
    assert est.wilson[1] - est.wilson[0] > 1.3 * (wilson_interval(80, 800)[1] - wilson_interval(80, 800)[0])
