"""run_stream: bounded concurrency, batched sinks, errors stored, clean budget stop, flush on
cancellation."""

from __future__ import annotations

import asyncio

import pytest

from deploysim.engine.budget import BudgetExhausted
from deploysim.engine.runner import run_stream


async def test_all_results_reach_the_sink_in_batches_under_the_cap() -> None:
    batches: list[list[int]] = []
    in_flight = peak = 0

    async def work(i: int) -> int:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001 * (i % 3))
        in_flight -= 1
        return i * 2

    stats = await run_stream(range(100), work, batches.append, concurrency=8, batch_size=16)
    assert sorted(x for b in batches for x in b) == [i * 2 for i in range(100)]
    assert max(len(b) for b in batches) <= 16 and peak == 8
    assert stats.started == stats.finished == stats.flushed == 100 and stats.stopped_reason is None


async def test_exceptions_become_results_when_a_handler_is_given() -> None:
    out: list[str] = []

    async def work(i: int) -> str:
        if i % 5 == 0:
            raise RuntimeError(f"bad {i}")
        return f"ok {i}"

    stats = await run_stream(range(20), work, out.extend, concurrency=4,
                             on_exception=lambda i, e: f"error {i}: {e}")
    assert len(out) == 20 and sum(s.startswith("error") for s in out) == 4 and stats.failed_jobs == 4


async def test_exceptions_propagate_without_a_handler() -> None:
    async def work(i: int) -> int:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await run_stream(range(3), work, lambda b: None, concurrency=2)


async def test_budget_stop_keeps_unstarted_work_pending_and_flushes_finished() -> None:
    seen: list[int] = []
    sent = 0

    async def work(i: int) -> int:
        nonlocal sent
        if sent >= 10:
            raise BudgetExhausted("cap reached")
        sent += 1
        await asyncio.sleep(0.001)
        return i

    taken = iter(range(1000))
    stats = await run_stream(taken, work, seen.extend, concurrency=4)
    assert len(seen) == 10 and stats.stopped_reason == "cap reached"
    assert stats.finished == 10 and len(list(taken)) > 900  # the rest was never pulled


async def test_cancellation_flushes_what_finished() -> None:
    seen: list[int] = []

    async def work(i: int) -> int:
        await asyncio.sleep(0 if i < 5 else 10)
        return i

    task = asyncio.create_task(run_stream(range(50), work, seen.extend, concurrency=10, batch_size=1000))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(seen) == [0, 1, 2, 3, 4]


async def test_gc_is_relaxed_while_streaming_and_restored_after_overlapping_streams() -> None:
    import gc

    before = gc.get_threshold()
    seen: list[tuple[int, int, int]] = []

    async def work(i: int) -> int:
        seen.append(gc.get_threshold())
        await asyncio.sleep(0.001 * i)
        return i

    await asyncio.gather(run_stream(range(5), work, lambda b: None, concurrency=2),
                         run_stream(range(20), work, lambda b: None, concurrency=2))
    assert all(t[0] >= 20_000 for t in seen)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
