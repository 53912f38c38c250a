"""Per-endpoint limits: adaptive concurrency and token buckets (RPM / TPM).

Adaptive concurrency works like TCP congestion control because an endpoint's capacity is
unknown and changes. Slow start: begin at half the cap and add 1 per clean completion (the
limit doubles every round trip) until the first 429. A 429 cuts the limit multiplicatively —
at most once per cooldown, so one burst of 429s from requests already in flight counts as one
signal — and growth then continues at about 5% per round trip (``growth`` per completion), so
the limit recovers in seconds yet oscillates just below the endpoint's real capacity.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable


class AdaptiveConcurrency:
    """A semaphore whose size moves between ``minimum`` and ``maximum``."""

    def __init__(self, maximum: int, *, initial: int | None = None, minimum: int = 1,
                 adaptive: bool = True, decrease: float = 0.7, cooldown_s: float = 2.0,
                 growth: float = 0.05, clock: Callable[[], float] = time.monotonic) -> None:
        if maximum < 1:
            raise ValueError("maximum concurrency must be >= 1")
        self.maximum = maximum
        self.minimum = max(1, min(minimum, maximum))
        self.adaptive = adaptive
        start = initial if initial is not None else max(self.minimum, maximum // 2)
        self.limit = float(min(maximum, max(self.minimum, start)) if adaptive else maximum)
        #: slow start until the first 429
        self.slow_start = True
        self.decrease = decrease
        self.cooldown_s = cooldown_s
        self.growth = growth
        self.in_flight = 0
        self.peak_in_flight = 0
        self.decreases = 0
        self._cooldown_until = 0.0
        self._hold_until = 0.0
        self._clock = clock
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if self.in_flight < int(self.limit) and not self._waiters:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.in_flight -= 1  # the slot was handed over just as we were cancelled
                self._wake()
            elif fut in self._waiters:
                self._waiters.remove(fut)
            raise
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def release(self, *, rate_limited: bool = False, clean: bool = True) -> bool:
        """Return a slot. ``rate_limited`` (a 429) shrinks the limit unless in cooldown; a
        ``clean`` completion grows it. Returns True when this call shrank the limit."""
        self.in_flight -= 1
        shrunk = False
        if self.adaptive:
            if rate_limited:
                now = self._clock()
                if now >= self._cooldown_until:
                    self.slow_start = False
                    self.limit = max(float(self.minimum), self.limit * self.decrease)
                    self._cooldown_until = now + self.cooldown_s
                    self.decreases += 1
                    shrunk = True
            elif clean and self.limit < self.maximum and (not self._hold_until or
                                                          self._clock() >= self._hold_until):
                self.limit = min(float(self.maximum), self.limit + (1.0 if self.slow_start else self.growth))
        self._wake()
        return shrunk

    def hold_growth(self, seconds: float) -> None:
        """No growth before ``seconds`` from now (while honouring a Retry-After pause)."""
        self._hold_until = max(self._hold_until, self._clock() + seconds)

    def _wake(self) -> None:
        while self._waiters and self.in_flight < int(self.limit):
            fut = self._waiters.popleft()
            if not fut.done():
                self.in_flight += 1
                fut.set_result(None)


class TokenBucket:
    """Requests or tokens per minute as a reservation bucket.

    ``reserve(n)`` takes ``n`` now, letting the level go negative, and returns how long the
    caller must wait before sending: callers queue fairly without a lock, and a request larger
    than the bucket still goes through once the debt is repaid. ``refund`` returns what an
    estimate over-reserved (e.g. max_tokens that were not generated).
    """

    def __init__(self, per_minute: float, *, burst_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute <= 0:
            raise ValueError("rate must be > 0")
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_s)
        self.level = self.capacity
        self._clock = clock
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._at) * self.rate)
        self._at = now

    def reserve(self, n: float) -> float:
        self._refill()
        self.level -= n
        return 0.0 if self.level >= 0 else -self.level / self.rate

    def refund(self, n: float) -> None:
        if n > 0:
            self._refill()
            self.level = min(self.capacity, self.level + n)
