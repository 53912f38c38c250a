"""Adaptive concurrency and token buckets."""

from __future__ import annotations

import asyncio

import pytest

from deploysim.models.limiter import AdaptiveConcurrency, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_slow_start_doubles_per_round_then_caps() -> None:
    lim = AdaptiveConcurrency(64, initial=4)
    assert lim.limit == 4
    for _ in range(4):
        await lim.acquire()
    for _ in range(4):
        lim.release()
    assert lim.limit == 8
    for _ in range(200):
        await lim.acquire()
        lim.release()
    assert lim.limit == 64


async def test_default_start_is_half_and_non_adaptive_is_fixed() -> None:
    assert AdaptiveConcurrency(100).limit == 50
    fixed = AdaptiveConcurrency(10, adaptive=False)
    assert fixed.limit == 10
    await fixed.acquire()
    fixed.release(rate_limited=True)
    assert fixed.limit == 10


async def test_429_shrinks_once_per_cooldown_then_grows_slowly() -> None:
    clock = Clock()
    lim = AdaptiveConcurrency(100, initial=100, cooldown_s=2.0, clock=clock)
    for _ in range(10):
        await lim.acquire()
    assert lim.release(rate_limited=True) is True
    assert lim.limit == pytest.approx(70)
    for _ in range(9):  # the rest of the burst, inside the cooldown
        assert lim.release(rate_limited=True) is False
    assert lim.limit == pytest.approx(70) and lim.decreases == 1
    for _ in range(70):  # one round of clean completions: +5%
        await lim.acquire()
        lim.release()
    assert lim.limit == pytest.approx(73.5)
    clock.now = 3.0
    await lim.acquire()
    lim.release(rate_limited=True)
    assert lim.limit == pytest.approx(73.5 * 0.7) and lim.decreases == 2


async def test_never_below_minimum_and_waiters_are_served_in_order() -> None:
    lim = AdaptiveConcurrency(2, initial=1)
    await lim.acquire()
    order: list[int] = []

    async def waiter(i: int) -> None:
        await lim.acquire()
        order.append(i)

    tasks = [asyncio.create_task(waiter(i)) for i in range(3)]
    await asyncio.sleep(0)
    assert order == [] and lim.in_flight == 1
    lim.release(rate_limited=True)
    assert lim.limit == 1.0  # minimum
    await asyncio.sleep(0)
    assert order == [0]
    lim.release()
    lim.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2] and lim.peak_in_flight <= 2


async def test_cancelled_waiter_does_not_leak_a_slot() -> None:
    lim = AdaptiveConcurrency(1, initial=1)
    await lim.acquire()
    task = asyncio.create_task(lim.acquire())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    lim.release()
    assert lim.in_flight == 0
    await asyncio.wait_for(lim.acquire(), 1)


def test_token_bucket_reserves_and_refunds() -> None:
    clock = Clock()
    tpm = TokenBucket(6000, clock=clock)  # 100 tokens/s, bucket of 100
    assert tpm.reserve(80) == 0.0
    assert tpm.reserve(70) == pytest.approx(0.5)  # 50 tokens in debt at 100/s
    tpm.refund(30)
    assert tpm.reserve(0) == pytest.approx(0.2)
    clock.now = 10.0
    assert tpm.reserve(100) == 0.0
    assert tpm.reserve(250) == pytest.approx(2.5)  # larger than the bucket: waits, never refused
