"""The simulate stage through the run store: requests as in production, one completion per
(prefix, arm, sample), refusals, budgets, resume and the cache."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from deploysim.config import RunConfig
from deploysim.models.base import Generation, Provider, ProviderError
from deploysim.models.mock_server import MockConfig, MockServer, MockServerThread
from deploysim.models.spec import ModelSpec, Prices, SamplingParams
from deploysim.records import Completion, Message, Prefix, PrefixContext, ToolSpec, Usage
from deploysim.simulate.config import SimulateConfig
from deploysim.simulate.stage import resolve_arms, run_simulate, simulate_async
from deploysim.store.db import RunStore

TOOL = ToolSpec(name="lookup_order", description="Find an order", parameters={"type": "object"})


def make_prefixes(n: int) -> list[Prefix]:
    out = []
    for i in range(n):
        ctx = ("general_chat", "customer_support", None)[i % 3]
        msgs: tuple[Message, ...] = (Message(role="user", content=f"question {i}"),)
        if i % 2 == 0:
            msgs = (Message(role="system", content="log system prompt"), *msgs)
        out.append(Prefix(id=Prefix.make_id(f"c{i}", len(msgs) - 1, msgs), conversation_id=f"c{i}",
                          turn_index=len(msgs) - 1, messages=msgs,
                          context=PrefixContext(product_context=ctx,
                                                tools=(TOOL,) if ctx == "customer_support" else (),
                                                system_prompt="context prompt" if i % 2 else None)))
    return out


class Recorder:
    """A provider that records what it was asked and answers deterministically."""

    is_loopback = True

    def __init__(self, fail: set[str] | None = None) -> None:
        self.calls: list[tuple[tuple[Message, ...], tuple[ToolSpec, ...], SamplingParams]] = []
        self.fail = fail or set()

    async def generate(self, messages: Sequence[Message], tools: Sequence[ToolSpec],
                       params: SamplingParams) -> Generation:
        self.calls.append((tuple(messages), tuple(tools), params))
        if messages[-1].content in self.fail:
            raise ProviderError("HTTP 400: refused by endpoint", retryable=False, status=400)
        reply = Message(role="assistant", content=f"re: {messages[-1].content} {params.seed}")
        return Generation(message=reply,
                          finish_reason="stop", usage=Usage(input_tokens=100, output_tokens=50), raw_id="r")

    async def aclose(self) -> None:
        pass


SPEC = ModelSpec(provider="openai", model="cand", base_url="http://127.0.0.1:9/v1",
                 system_prompts={"customer_support": "You are ShopBot.", "general_chat": "Be helpful."},
                 params=SamplingParams(temperature=0.7, seed=100, max_tokens=50), samples=2)


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    s = RunStore.open(tmp_path / "run")
    s.put_prefixes(make_prefixes(12))
    return s


async def test_requests_are_built_as_in_production(store: RunStore) -> None:
    rec = Recorder()
    [report] = await simulate_async(store, [("x_on_y", SPEC)], SimulateConfig(), provider=rec, progress=False)
    assert report.ok == 24 and report.total == 24 and report.pending == 0 and len(rec.calls) == 24
    by_question = {(c[0][-1].content, c[2].seed): c for c in rec.calls}
    msgs, tools, params = by_question[("question 1", 101)]  # customer_support, own context prompt
    assert msgs[0] == Message(role="system", content="You are ShopBot.") and tools == (TOOL,)
    assert params.temperature == 0.7 and params.max_tokens == 50
    msgs, tools, _ = by_question[("question 0", 100)]  # general_chat: log's system prompt replaced
    assert [m.content for m in msgs] == ["Be helpful.", "question 0"] and tools == ()
    msgs, _, _ = by_question[("question 2", 100)]  # no context: keeps the log's own system prompt
    assert [m.content for m in msgs] == ["log system prompt", "question 2"]
    msgs, _, _ = by_question[("question 5", 101)]  # no context, no system message: context prompt
    assert [m.content for m in msgs] == ["context prompt", "question 5"]
    assert {c[2].seed for c in rec.calls} == {100, 101}  # sample i uses seed + i


async def test_one_completion_per_prefix_arm_and_sample(store: RunStore) -> None:
    async with MockServer(MockConfig(latency_s=0.005)) as srv:
        x = SPEC.model_copy(update={"base_url": srv.base_url})
        y = x.model_copy(update={"model": "incumbent", "samples": 1})
        reports = await simulate_async(store, [("x_on_y", x), ("y_on_y", y)], SimulateConfig(concurrency=8),
                                       progress=False)
    assert [(r.arm, r.ok, r.errors) for r in reports] == [("x_on_y", 24, 0), ("y_on_y", 12, 0)]
    rows = list(store.iter_completions())
    assert len(rows) == 36 == len({(c.prefix_id, c.arm, c.sample_index) for c in rows})
    c = store.get_completion(Completion.make_id(rows[0].prefix_id, rows[0].arm, rows[0].model_spec_hash,
                                                rows[0].sample_index))
    assert c is not None and c.status == "ok" and c.transcript == (c.message,) and c.usage.output_tokens > 0
    assert c.latency_s is not None and c.raw_id and c.attempts == 1
    assert set(store.stage_reports("simulate")) == {f"x_on_y:{x.spec_hash()}", f"y_on_y:{y.spec_hash()}"}


async def test_guard_refusals_and_endpoint_errors_are_stored_with_reasons(store: RunStore) -> None:
    def guard(prefix: Prefix, provider: Provider) -> None:
        assert provider.is_loopback
        if prefix.context.product_context == "customer_support":
            raise PermissionError("raw text to a remote endpoint")

    rec = Recorder(fail={"question 0"})
    [r] = await simulate_async(store, [("x_on_y", SPEC)], SimulateConfig(), provider=rec, guard=guard,
                               progress=False)
    assert (r.ok, r.errors, r.refused) == (14, 10, 8)
    errors = list(store.iter_completions(status="error"))
    assert sum(e.error == "refused: raw text to a remote endpoint" for e in errors) == 8
    assert sum("refused by endpoint" in (e.error or "") for e in errors) == 2
    assert not any(c[0][-1].content in ("question 1", "question 4") for c in rec.calls)  # never sent


async def test_resume_does_only_what_is_missing_and_can_skip_errors(store: RunStore) -> None:
    first = Recorder(fail={"question 3"})
    await simulate_async(store, [("x_on_y", SPEC)], SimulateConfig(), provider=first, progress=False)
    assert store.count_completions(status="error") == 2
    skip = Recorder()
    [r] = await simulate_async(store, [("x_on_y", SPEC)], SimulateConfig(retry_errors=False), provider=skip,
                               progress=False)
    assert skip.calls == [] and r.already_done == 22 and r.pending == 2
    retry = Recorder()
    [r] = await simulate_async(store, [("x_on_y", SPEC)], SimulateConfig(), provider=retry, progress=False)
    assert len(retry.calls) == 2 and r.ok == 2 and r.pending == 0
    assert store.count_completions() == 24 and store.count_completions(status="ok") == 24


async def test_budget_stops_before_exceeding_and_holds_across_resumes(store: RunStore) -> None:
    spec = SPEC.model_copy(update={"prices": Prices(input_per_mtok=10.0, output_per_mtok=20.0)})
    # a request costs 100*10e-6 + 50*20e-6 = $0.002; its reservation is about the same
    rec = Recorder()
    [r] = await simulate_async(store, [("x_on_y", spec)], SimulateConfig(concurrency=4, budget_usd=0.0201),
                               provider=rec, progress=False)
    assert r.stopped_by_budget and "budget" in (r.stop_reason or "")
    assert r.cost_usd <= 0.0201 and r.ok == len(rec.calls) and 5 <= r.ok <= 10
    assert r.pending == 24 - r.ok and store.count_completions(status="error") == 0
    again = Recorder()
    [r2] = await simulate_async(store, [("x_on_y", spec)], SimulateConfig(budget_usd=0.0201), provider=again,
                                progress=False)
    assert r2.stopped_by_budget and len(again.calls) <= 1  # earlier spend counts against the cap
    [r3] = await simulate_async(store, [("x_on_y", spec)], SimulateConfig(), provider=Recorder(),
                                progress=False, budget_usd=1.0)
    assert r3.pending == 0 and not r3.stopped_by_budget
    assert store.completion_spend("x_on_y")[2] == pytest.approx(0.048)


async def test_shared_cache_answers_a_second_run_without_calls(tmp_path: Path) -> None:
    cfg = SimulateConfig(cache_dir=tmp_path / "cache")
    runs = []
    for name in ("a", "b"):
        s = RunStore.open(tmp_path / name)
        s.put_prefixes(make_prefixes(6))
        rec = Recorder()
        [r] = await simulate_async(s, [("x_on_y", SPEC)], cfg, provider=rec, progress=False)
        runs.append((r, len(rec.calls), [c.message for c in s.iter_completions()]))
    (_, calls_a, msgs_a), (rb, calls_b, msgs_b) = runs
    assert calls_a == 12 and calls_b == 0 and rb.cached == 12 and msgs_a == msgs_b
    off = RunStore.open(tmp_path / "c")
    off.put_prefixes(make_prefixes(6))
    rec = Recorder()
    await simulate_async(off, [("x_on_y", SPEC)], cfg.model_copy(update={"cache": False}), provider=rec,
                         progress=False)
    assert len(rec.calls) == 12


def test_run_simulate_from_a_run_config(tmp_path: Path) -> None:
    store = RunStore.open(tmp_path / "run")
    store.put_prefixes(make_prefixes(5))
    with MockServerThread(MockConfig()) as srv:
        cfg = RunConfig.model_validate({
            "models": {"cand": {"provider": "openai", "model": "x", "base_url": srv.base_url},
                       "inc": {"provider": "openai", "model": "y", "base_url": srv.base_url, "samples": 2}},
            "simulate": {"candidate": "cand", "control": "inc"}})
        reports = run_simulate(store, cfg, progress=False)
    assert [(r.arm, r.model, r.ok) for r in reports] == [("x_on_y", "x", 5), ("y_on_y", "y", 10)]
    assert [a for a, _ in resolve_arms(RunConfig())] == ["x_on_y"]
    assert resolve_arms(RunConfig())[0][1].provider == "embedded"  # nothing configured: offline model
    with pytest.raises(ValueError, match=r"simulate\.control"):
        resolve_arms(RunConfig(), ["y_on_y"])


async def test_challenge_and_release_arms_draw_from_their_own_pools(tmp_path: Path) -> None:
    store = RunStore.open(tmp_path)
    store.put_prefixes(make_prefixes(4))
    msgs = (Message(role="user", content="adversarial prompt"),)
    store.put_prefixes([Prefix(id=Prefix.make_id("set", 0, msgs, pool="challenge"), conversation_id="set",
                               turn_index=0, messages=msgs, pool="challenge")])
    rec = Recorder()
    spec = SPEC.model_copy(update={"samples": 1})
    reports = await simulate_async(store, [("challenge", spec), ("x_prod", spec)], SimulateConfig(),
                                   provider=rec, progress=False)
    assert [(r.arm, r.total, r.ok) for r in reports] == [("challenge", 1, 1), ("x_prod", 0, 0)]
    assert [c[0][-1].content for c in rec.calls] == ["adversarial prompt"]
    assert "challenge cand: 1 ok, 0 errors" in reports[0].summary()
    with pytest.raises(ValueError, match="arm must be one of"):
        await simulate_async(store, [("y_prod", spec)], SimulateConfig(), provider=rec, progress=False)
