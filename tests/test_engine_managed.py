"""ManagedProvider policies with a scripted provider and a fake clock: retries, backoff,
Retry-After, deadlines, timeouts, budgets, cost accounting and the cache."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from deploysim.engine.budget import Budget, BudgetExhausted
from deploysim.engine.managed import EndpointLimits, ManagedProvider
from deploysim.models.base import Generation, ModelRequest, ProviderError
from deploysim.models.cache import ResponseCache
from deploysim.models.spec import Prices, SamplingParams
from deploysim.records import Message, Usage
from deploysim.store.db import RunStore

MSGS = [Message(role="user", content="hello there")]


def req(params: SamplingParams | None = None) -> ModelRequest:
    return ModelRequest(messages=tuple(MSGS), tools=(), params=params or SamplingParams(), clearance="public")
OK = Generation(message=Message(role="assistant", content="hi"), finish_reason="stop",
                usage=Usage(input_tokens=1000, output_tokens=500))


class Scripted:
    """Plays a script: ProviderError instances are raised, "hang" sleeps forever, else OK."""

    is_loopback = True

    def __init__(self, script: Sequence[object]) -> None:
        self.script = list(script)
        self.calls = 0

    async def generate(self, request: ModelRequest) -> Generation:
        step = self.script[self.calls] if self.calls < len(self.script) else OK
        self.calls += 1
        if isinstance(step, ProviderError):
            raise step
        if step == "hang":
            await asyncio.sleep(3600)
        if step == "bug":
            raise KeyError("provider bug")
        return OK

    async def aclose(self) -> None:
        pass


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def managed(script: Sequence[object], t: FakeTime | None = None,
            **kw: object) -> tuple[ManagedProvider, Scripted]:
    prov = Scripted(script)
    t = t or FakeTime()
    limits = kw.pop("limits", EndpointLimits(max_attempts=4, deadline_s=100, backoff_base_s=1.0))
    m = ManagedProvider(prov, spec_hash="h", limits=limits, clock=t.clock, sleep=t.sleep, **kw)  # type: ignore[arg-type]
    return m, prov


def err500() -> ProviderError:
    return ProviderError("HTTP 500: boom", retryable=True, status=500)


async def test_retries_until_ok_with_growing_jittered_backoff() -> None:
    t = FakeTime()
    m, prov = managed([err500(), err500()], t)
    out = await m.run(req())
    assert out.ok and out.attempts == 3 and prov.calls == 3
    assert 0.5 <= t.sleeps[0] <= 1.0 and 1.0 <= t.sleeps[1] <= 2.0
    assert m.stats.retries == 2 and m.stats.ok == 1


async def test_gives_up_after_max_attempts_with_reason() -> None:
    m, prov = managed([err500()] * 10)
    out = await m.run(req())
    assert not out.ok and prov.calls == 4 and out.attempts == 4
    assert "HTTP 500" in (out.error or "") and "gave up after 4 attempts" in (out.error or "")
    assert m.stats.failed == 1 and m.stats.errors == {"500": 1}


async def test_non_retryable_error_stops_at_once() -> None:
    m, prov = managed([ProviderError("HTTP 400: context too long", retryable=False, status=400)])
    out = await m.run(req())
    assert prov.calls == 1 and "not retryable" in (out.error or "")


async def test_retry_after_is_honoured_and_pauses_the_endpoint() -> None:
    t = FakeTime()
    hint = ProviderError("HTTP 429", retryable=True, status=429, retry_after=7.0, rate_limited=True)
    m, _ = managed([hint], t)
    out = await m.run(req())
    assert out.ok and out.attempts == 2
    assert sum(t.sleeps) >= 7.0  # waited at least the server's hint before retrying
    assert m.stats.rate_limited == 1 and m.concurrency.decreases == 1


async def test_total_deadline_bounds_the_retries() -> None:
    t = FakeTime()
    limits = EndpointLimits(max_attempts=50, deadline_s=10, backoff_base_s=4.0)
    m, prov = managed([err500()] * 50, t, limits=limits)
    out = await m.run(req())
    assert not out.ok and "deadline of 10s" in (out.error or "") and prov.calls < 5
    assert t.now <= 10


async def test_per_attempt_timeout_turns_a_hang_into_a_retry() -> None:
    prov = Scripted(["hang", "ok"])
    m = ManagedProvider(prov, spec_hash="h", limits=EndpointLimits(timeout_s=0.05, backoff_base_s=0.01))
    out = await m.run(req())
    assert out.ok and out.attempts == 2 and prov.calls == 2


async def test_provider_bug_becomes_a_stored_error_not_an_exception() -> None:
    m, _ = managed(["bug"])
    out = await m.run(req())
    assert not out.ok and "unexpected KeyError" in (out.error or "")


async def test_generate_raises_for_protocol_callers() -> None:
    m, _ = managed([ProviderError("HTTP 401: bad key", retryable=False, status=401)])
    with pytest.raises(ProviderError, match="bad key"):
        await m.generate(req())


async def test_cost_accounting_and_budget_stop_before_exceeding() -> None:
    prices = Prices(input_per_mtok=1.0, output_per_mtok=2.0)  # OK costs 0.001 + 0.001 = $0.002
    budget = Budget(0.0105)
    m, prov = managed([], prices=prices, budget=budget)
    params = SamplingParams(max_tokens=500)
    done = 0
    with pytest.raises(BudgetExhausted):
        for _ in range(100):
            out = await m.run(req(params))
            assert out.cost_usd == pytest.approx(0.002)
            done += 1
    # each reservation is ~$0.001 (tiny prompt + 500 output tokens at $2/M); spend never passes the cap
    assert budget.spent_usd <= 0.0105 and done == prov.calls == 5
    assert m.stats.cost_usd == pytest.approx(0.010) and budget.reserved_usd == pytest.approx(0.0)


async def test_cache_hit_skips_the_provider(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with RunStore.open(tmp_path) as store:
        cache = ResponseCache(store)
        m, prov = managed([], cache=cache)
        first = await m.run(req(), sample_index=0)
        again = await m.run(req(), sample_index=0)
        other_sample = await m.run(req(), sample_index=1)
        assert prov.calls == 2 and again.cached and not first.cached and not other_sample.cached
        assert again.generation == first.generation and again.cost_usd == 0.0
        m.flush()
        assert store.count_cached_responses() == 2


async def test_rpm_bucket_spaces_requests() -> None:
    t = FakeTime()
    m, _ = managed([], t, limits=EndpointLimits(rpm=60))  # one per second, burst of one
    for _ in range(4):
        assert (await m.run(req())).ok
    assert t.now == pytest.approx(3.0)


async def test_deadline_counts_from_the_first_send_not_from_queueing_for_a_slot() -> None:
    class Slow(Scripted):
        async def generate(self, request: ModelRequest) -> Generation:
            await asyncio.sleep(0.04)
            return OK

    limits = EndpointLimits(concurrency=1, initial_concurrency=1, deadline_s=0.15, timeout_s=1)
    m = ManagedProvider(Slow([]), spec_hash="h", limits=limits)
    outs = await asyncio.gather(*(m.run(req()) for _ in range(6)))
    assert all(o.ok for o in outs)  # the last waited ~0.2 s for the single slot, then had its own 0.15 s


def test_embedded_endpoint_is_capped_at_two_requests_per_slot() -> None:
    from deploysim.models.spec import ModelSpec

    assert EndpointLimits.from_spec(ModelSpec(slots=4, concurrency=64)).concurrency == 8
    assert EndpointLimits.from_spec(ModelSpec(provider="openai", model="m", concurrency=64)).concurrency == 64
