"""One-call multi-category judging: one request per completion for every judged category, each
category still its own judgment, its own identity, and errors that never read as "no"."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from deploysim.config import RunConfig
from deploysim.grade.config import GradeConfig
from deploysim.grade.judge import LLMJudge
from deploysim.grade.judge_multi import MultiJudge, parse_multi
from deploysim.grade.taxonomy import load_taxonomy
from deploysim.models.base import Generation, ModelRequest
from deploysim.models.spec import ModelSpec
from deploysim.records import Message
from deploysim.store.db import RunStore
from tests.fakes import grade_run
from tests.test_grade_stage import populate

TAX = load_taxonomy()
CATS = ["hate", "refusal", "fabricated_facts", "calculator_hacking"]


class SchemaJudge:
    """Answers every category its request's schema asks for; ``broken`` answers are not JSON."""

    def __init__(self, broken: int = 0) -> None:
        self.requests: list[ModelRequest] = []
        self.broken = broken

    async def generate(self, request: ModelRequest) -> Generation:
        self.requests.append(request)
        if len(self.requests) <= self.broken:
            return Generation(message=Message(role="assistant", content="sorry, I cannot produce JSON"))
        schema = request.params.extra["response_format"]["json_schema"]["schema"]
        answer = {}
        for cid, sub in schema["properties"].items():
            flagged = cid == "refusal"
            verdict: dict[str, object] = {"rationale": f"about {cid}", "label": flagged}
            if "severity" in sub["properties"]:
                verdict["severity"] = 0
            answer[cid] = verdict
        return Generation(message=Message(role="assistant", content=orjson.dumps(answer).decode()))

    async def aclose(self) -> None:
        pass


def judge_cfg(mode: str) -> RunConfig:
    spec = ModelSpec(provider="openai", base_url="http://127.0.0.1:9/v1", model="judge-model", max_attempts=1)
    return RunConfig(models={"judge": spec}, grade=GradeConfig(judge="judge", judge_mode=mode,
                                                               categories=CATS,
                                                               graders=dict.fromkeys(CATS,
                                                                                     "judge")))  # type: ignore[arg-type]


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[RunStore]:
    with RunStore.open(tmp_path / "run") as s:
        yield s


def test_one_call_per_completion_for_every_category(store: RunStore) -> None:
    completions = populate(store, n=3)
    judge = SchemaJudge()
    report = grade_run(store, judge_cfg("multi"), judge_provider=judge)
    assert len(judge.requests) == len(completions)  # 9 calls, not 9 × 4
    judgments = list(store.iter_judgments())
    assert len(judgments) == len(completions) * len(CATS) and all(j.status == "ok" for j in judgments)
    assert {j.category for j in judgments if j.label} == {"refusal"}
    assert {j.grader_id for j in judgments} == {f"judge_multi:{c}" for c in CATS}
    assert all(r.kind == "judge" for r in report.categories)
    schema = judge.requests[0].params.extra["response_format"]["json_schema"]["schema"]
    assert sorted(schema["properties"]) == sorted(CATS)
    params = judge.requests[0].params
    assert params.temperature == 0.0 and params.seed == 0  # the judge defaults


def test_a_failed_call_is_an_error_for_every_category_and_retried(store: RunStore) -> None:
    populate(store, n=1)
    judge = SchemaJudge(broken=1)
    grade_run(store, judge_cfg("multi"), judge_provider=judge)
    statuses = Counter((j.status, (j.error or "").split(":")[0]) for j in store.iter_judgments())
    assert statuses[("error", "unparseable verdict")] == len(CATS)  # one bad call: every category errs
    grade_run(store, judge_cfg("multi"), judge_provider=judge)
    assert Counter(j.status for j in store.iter_judgments()) == {"ok": 3 * len(CATS)}


def test_modes_have_different_identities_and_never_mix(store: RunStore) -> None:
    spec = ModelSpec(provider="openai", model="judge-model")
    multi = MultiJudge([TAX[c] for c in CATS], None, spec).graders()
    single = {c: LLMJudge(TAX[c], None, spec) for c in CATS}
    assert all(multi[c].grader_hash != single[c].grader_hash for c in CATS)
    fewer = MultiJudge([TAX[c] for c in CATS[:2]], None, spec).graders()
    assert fewer["hate"].grader_hash != multi["hate"].grader_hash  # the call differs, so the measurement does


@pytest.mark.parametrize(("answer", "reason"), [
    ('{"hate": {"rationale": "r", "label": false}}', "missing: ['refusal']"),
    ('{"hate": {"rationale": "r", "label": "no"}, "refusal": {"rationale": "r", "label": true}}',
     "hate: label must be true or false"),
    ('{"hate": {"rationale": "r", "label": false}, "refusal": {"rationale": "r"}}',
     "refusal: keys do not match"),
])
def test_the_parser_refuses_anything_but_the_schema(answer: str, reason: str) -> None:
    from deploysim.grade.judge import VerdictError

    with pytest.raises(VerdictError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        parse_multi(answer, [TAX["hate"], TAX["refusal"]])
