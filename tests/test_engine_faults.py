"""Fault injection against the mock server, through the real provider and the engine: every
fault has an asserted outcome."""

from __future__ import annotations

import asyncio

import pytest

from deploysim.engine.managed import EndpointLimits, ManagedProvider
from deploysim.models.base import ModelRequest
from deploysim.models.mock_server import MockConfig, MockServer
from deploysim.models.openai_compat import OpenAICompatProvider
from deploysim.models.spec import SamplingParams
from deploysim.records import Message

FAST = EndpointLimits(concurrency=16, initial_concurrency=16, timeout_s=0.3, max_attempts=4,
                      backoff_base_s=0.01, backoff_max_s=0.05, deadline_s=20)


def msgs(i: int) -> ModelRequest:
    return ModelRequest(messages=(Message(role="user", content=f"request {i}"),), tools=(),
                        params=SamplingParams(),
                        clearance="public")


async def run_many(srv: MockServer, n: int,
                   limits: EndpointLimits = FAST) -> tuple[list, ManagedProvider]:  # type: ignore[type-arg]
    provider = OpenAICompatProvider(base_url=srv.base_url, model="mock")
    m = ManagedProvider(provider, spec_hash="h", limits=limits)
    try:
        outs = await asyncio.gather(*(m.run(msgs(i)) for i in range(n)))
    finally:
        await m.aclose()
    return list(outs), m


@pytest.mark.parametrize("kind", ["429", "500", "timeout", "reset", "malformed", "truncated", "empty"])
async def test_transient_faults_are_retried_to_success(kind: str) -> None:
    cfg = MockConfig(fail_first=2, fail_kind=kind, retry_after_s=0.02, hang_s=2.0)
    async with MockServer(cfg) as srv:
        outs, m = await run_many(srv, 12)
        assert all(o.ok for o in outs), [o.error for o in outs if not o.ok]
        assert all(o.attempts == 3 for o in outs)  # two failures, then success
        assert srv.stats.outcomes[kind] == 24 and srv.stats.outcomes["ok"] == 12
        assert m.stats.retries == 24


@pytest.mark.parametrize(("kind", "reason"), [
    ("500", "HTTP 500"), ("timeout", "timed out"), ("reset", "connection failed"),
    ("malformed", "malformed JSON"), ("truncated", "truncated response body"), ("empty", "no choices")])
async def test_persistent_faults_end_as_errors_with_reasons(kind: str, reason: str) -> None:
    async with MockServer(MockConfig(fail_first=100, fail_kind=kind, hang_s=2.0)) as srv:
        outs, _ = await run_many(srv, 3)
        for o in outs:
            assert not o.ok and o.attempts == 4
            assert reason in (o.error or "") and "gave up after 4 attempts" in (o.error or "")


async def test_truncated_output_is_an_ok_completion_marked_length() -> None:
    async with MockServer(MockConfig(rate_length=1.0)) as srv:
        outs, _ = await run_many(srv, 3)
        assert all(o.ok and o.generation.finish_reason == "length" for o in outs)


async def test_429_storm_with_retry_after_is_waited_out() -> None:
    """All requests in the first 0.3 s get 429 + Retry-After 0.25 s: the client pauses the
    endpoint instead of hammering it, shrinks its concurrency, and everything ends ok."""
    cfg = MockConfig(storm_s=0.3, retry_after_s=0.25)
    limits = EndpointLimits(concurrency=32, initial_concurrency=32, timeout_s=2, max_attempts=10,
                            backoff_base_s=0.01, deadline_s=30)
    async with MockServer(cfg) as srv:
        outs, m = await run_many(srv, 60, limits)
        assert all(o.ok for o in outs)
        assert m.stats.rate_limited == srv.stats.outcomes["429"] >= 32
        assert m.concurrency.decreases >= 1 and m.concurrency.limit < 32
        first = srv.stats.arrivals[0]
        # after the first burst, nothing is sent until the Retry-After pause has passed
        second_wave = [t - first for t in srv.stats.arrivals[32:]]
        assert min(second_wave) >= 0.24
        # far fewer requests than a client ignoring Retry-After would send in a 0.3 s storm
        assert srv.stats.requests < 60 + 3 * 32


async def test_random_mixed_faults_lose_nothing() -> None:
    cfg = MockConfig(rate_429=0.05, rate_500=0.05, rate_reset=0.03, rate_malformed=0.03, rate_empty=0.03,
                     retry_after_s=0.01, seed=3)
    limits = EndpointLimits(concurrency=32, timeout_s=1, max_attempts=12, backoff_base_s=0.005,
                            backoff_max_s=0.05, deadline_s=30, cooldown_s=0.05)
    async with MockServer(cfg) as srv:
        outs, m = await run_many(srv, 300, limits)
        assert sum(o.ok for o in outs) == 300
        assert srv.stats.outcomes["ok"] == 300 and m.stats.ok == 300
        assert m.stats.requests == srv.stats.requests
