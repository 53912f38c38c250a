"""The simulate stage through the run store: requests as in production, one completion per
(prefix, arm, sample), refusals, budgets, resume and the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploysim.assemble import resolve_arms, run_stages
from deploysim.config import RunConfig
from deploysim.models.base import Generation, ModelRequest, ProviderError
from deploysim.models.hub import ModelHub
from deploysim.models.mock_server import MockConfig, MockServer, MockServerThread
from deploysim.models.policy import SendPolicy
from deploysim.models.spec import ModelSpec, Prices, SamplingParams
from deploysim.records import Completion, Message, Prefix, PrefixContext, ToolSpec, Usage
from deploysim.registry import Registry
from deploysim.simulate.config import SimulateConfig
from deploysim.simulate.stage import SimArm, SimulateInputs, SimulateReport, simulate_async
from deploysim.store.db import RunStore
from tests.fakes import hub_with, sim

TOOL = ToolSpec(name="lookup_order", description="Find an order", parameters={"type": "object"})


def make_prefixes(n: int, *, raw_context: str | None = None) -> list[Prefix]:
    """``raw_context``: prefixes of that product context are raw, the others de-identified."""
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
                                                system_prompt="context prompt" if i % 2 else None,
                                                deidentified="raw"
                                                if raw_context is None or ctx == raw_context
                                                else "deidentified")))
    return out


class Recorder:
    """A provider that records what it was asked and answers deterministically."""

    def __init__(self, fail: set[str] | None = None) -> None:
        self.calls: list[tuple[tuple[Message, ...], tuple[ToolSpec, ...], SamplingParams]] = []
        self.fail = fail or set()

    async def generate(self, request: ModelRequest) -> Generation:
        messages, params = request.messages, request.params
        self.calls.append((request.messages, request.tools, params))
        if messages[-1].content in self.fail:
            raise ProviderError("HTTP 400: refused by endpoint", retryable=False, status=400)
        reply = Message(role="assistant", content=f"re: {messages[-1].content} {params.seed}")
        return Generation(message=reply,
                          finish_reason="stop", usage=Usage(input_tokens=100, output_tokens=50), raw_id="r")

    async def aclose(self) -> None:
        pass


SPEC = ModelSpec(provider="fake", model="cand",
                 system_prompts={"customer_support": "You are ShopBot.", "general_chat": "Be helpful."},
                 params=SamplingParams(temperature=0.7, seed=100, max_tokens=50), samples=2)


def inputs(arms: list[SimArm], hub: ModelHub, cfg: SimulateConfig | None = None,
           budget: float | None = None) -> SimulateInputs:
    return SimulateInputs(config=cfg or SimulateConfig(), arms=arms, models=hub, budget_usd=budget,
                          progress=False)


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    s = RunStore.open(tmp_path / "run")
    s.put_prefixes(make_prefixes(12))
    return s


async def test_requests_are_built_as_in_production(store: RunStore) -> None:
    rec = Recorder()
    [report] = await simulate_async(inputs([sim("x_on_y", SPEC)], hub_with(rec)), store)
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
    done = list(store.iter_completions())
    settings = store.get_request_settings([c.request.settings_id for c in done if c.request])
    assert len(done) == 24 and all(c.request is not None for c in done)
    shop = [settings[c.request.settings_id] for c in done if c.request and
            settings[c.request.settings_id].system_prompt == "You are ShopBot."]
    assert shop and all(st.tools == (TOOL,) and st.model == "cand" and st.params["temperature"] == 0.7
                        for st in shop)  # each completion records the request actually sent


async def test_one_completion_per_prefix_arm_and_sample(store: RunStore) -> None:
    async with MockServer(MockConfig(latency_s=0.005)) as srv:
        x = SPEC.model_copy(update={"provider": "openai", "base_url": srv.base_url})
        y = x.model_copy(update={"model": "incumbent", "samples": 1})
        hub = ModelHub(Registry.discover(), SendPolicy(allow_raw_to_remote=False))
        reports = await simulate_async(inputs([sim("x_on_y", x), sim("y_on_y", y)], hub,
                                              SimulateConfig(concurrency=8)), store)
    assert [(r.arm, r.ok, r.errors) for r in reports] == [("x_on_y", 24, 0), ("y_on_y", 12, 0)]
    rows = list(store.iter_completions())
    assert len(rows) == 36 == len({(c.prefix_id, c.arm, c.sample_index) for c in rows})
    c = store.get_completion(Completion.make_id(rows[0].prefix_id, rows[0].arm, rows[0].generator_hash,
                                                rows[0].sample_index))
    assert c is not None and c.status == "ok" and c.transcript == (c.message,) and c.usage.output_tokens > 0
    assert c.latency_s is not None and c.raw_id and c.attempts == 1
    assert c.request is not None and c.request.reported_model  # the mock server reports its model
    assert set(store.stage_reports("simulate")) == {f"x_on_y:{sim('x_on_y', x).generator_hash}",
                                                    f"y_on_y:{sim('y_on_y', y).generator_hash}"}


async def test_send_policy_refusals_and_endpoint_errors_are_stored_with_reasons(tmp_path: Path) -> None:
    store = RunStore.open(tmp_path / "run")
    store.put_prefixes(make_prefixes(12, raw_context="customer_support"))
    rec = Recorder(fail={"question 0"})
    [r] = await simulate_async(inputs([sim("x_on_y", SPEC)], hub_with(rec, local=False)), store)
    assert (r.ok, r.errors, r.refused) == (14, 10, 8)
    errors = list(store.iter_completions(status="error"))
    assert sum((e.error or "").startswith("refused: a request (variant) carries text that was not "
                                          "de-identified") for e in errors) == 8
    assert sum("refused by endpoint" in (e.error or "") for e in errors) == 2
    assert not any(c[0][-1].content in ("question 1", "question 4") for c in rec.calls)  # never sent


async def test_resume_does_only_what_is_missing_and_can_skip_errors(store: RunStore) -> None:
    first = Recorder(fail={"question 3"})
    await simulate_async(inputs([sim("x_on_y", SPEC)], hub_with(first)), store)
    assert store.count_completions(status="error") == 2
    skip = Recorder()
    [r] = await simulate_async(inputs([sim("x_on_y", SPEC)], hub_with(skip),
                                      SimulateConfig(retry_errors=False)),
                               store)
    assert skip.calls == [] and r.already_done == 22 and r.pending == 2
    retry = Recorder()
    [r] = await simulate_async(inputs([sim("x_on_y", SPEC)], hub_with(retry)), store)
    assert len(retry.calls) == 2 and r.ok == 2 and r.pending == 0
    assert store.count_completions() == 24 and store.count_completions(status="ok") == 24


async def test_budget_stops_before_exceeding_and_holds_across_resumes(store: RunStore) -> None:
    spec = SPEC.model_copy(update={"prices": Prices(input_per_mtok=10.0, output_per_mtok=20.0)})
    # a request costs 100*10e-6 + 50*20e-6 = $0.002; its reservation is about the same
    rec = Recorder()
    [r] = await simulate_async(inputs([sim("x_on_y", spec)], hub_with(rec),
                                      SimulateConfig(concurrency=4, budget_usd=0.0201)), store)
    assert r.stopped_by_budget and "budget" in (r.stop_reason or "")
    assert r.cost_usd <= 0.0201 and r.ok == len(rec.calls) and 5 <= r.ok <= 10
    assert r.pending == 24 - r.ok and store.count_completions(status="error") == 0
    again = Recorder()
    [r2] = await simulate_async(inputs([sim("x_on_y", spec)], hub_with(again),
                                       SimulateConfig(budget_usd=0.0201)),
                                store)
    assert r2.stopped_by_budget and len(again.calls) <= 1  # earlier spend counts against the cap
    [r3] = await simulate_async(inputs([sim("x_on_y", spec)], hub_with(Recorder()), budget=1.0), store)
    assert r3.pending == 0 and not r3.stopped_by_budget
    assert store.completion_spend("x_on_y")[2] == pytest.approx(0.048)


async def test_shared_cache_answers_a_second_run_without_calls(tmp_path: Path) -> None:
    cfg = SimulateConfig(cache_dir=tmp_path / "cache")
    runs = []
    for name in ("a", "b"):
        s = RunStore.open(tmp_path / name)
        s.put_prefixes(make_prefixes(6))
        rec = Recorder()
        [r] = await simulate_async(inputs([sim("x_on_y", SPEC)], hub_with(rec), cfg), s)
        runs.append((r, len(rec.calls), [c.message for c in s.iter_completions()]))
    (_, calls_a, msgs_a), (rb, calls_b, msgs_b) = runs
    assert calls_a == 12 and calls_b == 0 and rb.cached == 12 and msgs_a == msgs_b
    off = RunStore.open(tmp_path / "c")
    off.put_prefixes(make_prefixes(6))
    rec = Recorder()
    await simulate_async(inputs([sim("x_on_y", SPEC)], hub_with(rec),
                                cfg.model_copy(update={"cache": False})), off)
    assert len(rec.calls) == 12


def test_simulate_through_the_assembler_from_a_run_config(tmp_path: Path) -> None:
    store = RunStore.open(tmp_path / "run")
    store.put_prefixes(make_prefixes(5))
    store.close()
    with MockServerThread(MockConfig()) as srv:
        cfg = RunConfig.model_validate({
            "run": {"dir": str(tmp_path / "run")},
            "models": {"cand": {"provider": "openai", "model": "x", "base_url": srv.base_url},
                       "inc": {"provider": "openai", "model": "y", "base_url": srv.base_url, "samples": 2}},
            "simulate": {"candidate": "cand", "control": "inc"}})
        [report] = run_stages(cfg, ["simulate"], log=lambda _: None)
    arms = [SimulateReport.model_validate(r) for r in report.data["arms"]]
    assert report.status == "ran" and [(r.arm, r.model, r.ok) for r in arms] == [("x_on_y", "x", 5),
                                                                                 ("y_on_y", "y", 10)]
    assert [a.name for a in resolve_arms(RunConfig()) if a.kind == "simulated"] == ["x_on_y"]


async def test_challenge_and_release_arms_draw_from_their_own_pools(tmp_path: Path) -> None:
    store = RunStore.open(tmp_path)
    store.put_prefixes(make_prefixes(4))
    msgs = (Message(role="user", content="adversarial prompt"),)
    store.put_prefixes([Prefix(id=Prefix.make_id("set", 0, msgs, pool="challenge"), conversation_id="set",
                               turn_index=0, messages=msgs, pool="challenge")])
    rec = Recorder()
    spec = SPEC.model_copy(update={"samples": 1})
    reports = await simulate_async(inputs([sim("challenge", spec, pool="challenge"),
                                           sim("x_prod", spec, pool="release")], hub_with(rec)), store)
    assert [(r.arm, r.total, r.ok) for r in reports] == [("challenge", 1, 1), ("x_prod", 0, 0)]
    assert [c[0][-1].content for c in rec.calls] == ["adversarial prompt"]
    assert "challenge cand: 1 ok, 0 errors" in reports[0].summary()


async def test_environment_overrides_the_system_prompt_and_tools_and_changes_the_generator(
        store: RunStore) -> None:
    rec = Recorder()
    plain, strict = sim("x_on_y", SPEC), sim("x_on_y", SPEC, system_prompts={"default": "Refuse."},
                                             tools="none")
    assert plain.generator_hash != strict.generator_hash  # the environment is part of the identity
    await simulate_async(inputs([strict], hub_with(rec)), store)
    assert {c[0][0].content for c in rec.calls} == {"Refuse."} and all(c[1] == () for c in rec.calls)


class SmallContext(Recorder):
    """An endpoint whose context holds a system prompt and one message."""

    async def generate(self, request: ModelRequest) -> Generation:
        if len(request.messages) > 2:
            from deploysim.models.wire import status_error

            raise status_error(400, b'{"error":{"message":"request (900 tokens) exceeds the available '
                                    b'context size (512 tokens)","type":"exceed_context_size_error"}}', {})
        return await super().generate(request)


@pytest.mark.parametrize("rule", ["too_long", "truncate_oldest"])
async def test_context_overflow_rule_is_applied_and_recorded(tmp_path: Path, rule: str) -> None:
    store = RunStore.open(tmp_path / "run")
    msgs = (Message(role="user", content="first"), Message(role="assistant", content="answer"),
            Message(role="user", content="second"))
    store.put_prefixes([Prefix(id=Prefix.make_id("c", 2, msgs), conversation_id="c", turn_index=2,
                               messages=msgs, context=PrefixContext(deidentified="synthetic"))])
    spec = ModelSpec(provider="fake", model="cand", system_prompts={"default": "sys"},
                     context_overflow=rule)  # type: ignore[arg-type]
    [report] = await simulate_async(inputs([sim("x_on_y", spec)], hub_with(SmallContext())), store)
    [done] = list(store.iter_completions())
    if rule == "too_long":
        assert report.errors == 1 and done.status == "error" and done.error is not None
        assert done.error.startswith("too long:")
    else:
        assert report.ok == 1 and done.request is not None and done.request.context_dropped == 2
        settings = store.get_request_settings([done.request.settings_id])
        assert next(iter(settings.values())).wrappers == ({"context_overflow": "truncate_oldest"},)
