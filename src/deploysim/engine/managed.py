"""``ManagedProvider``: any provider plus every policy a real endpoint needs.

Cache lookup, budget reservation, Retry-After pauses, RPM/TPM buckets, adaptive concurrency,
a per-attempt timeout, jittered exponential backoff with bounded attempts and a total
deadline, and token/cost accounting — written once, used by simulation and by LLM-judge
grading alike. :meth:`ManagedProvider.run` never raises for a failed request: it returns an
:class:`Outcome` that is ``ok`` or carries the reason, so every request can be stored. It
raises only :class:`BudgetExhausted` (nothing was sent) and cancellation. ``generate``
satisfies the :class:`Provider` protocol for callers that prefer an exception.

The provider it wraps is the registry's :class:`~deploysim.models.policy.GatedProvider`, so a
request the send policy refuses fails on its first attempt, before any connection, and is
never retried; it ends as an error outcome whose reason starts with ``refused:``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from deploysim.engine.budget import Budget
from deploysim.engine.ledger import SpendLedger
from deploysim.models.base import Generation, ModelRequest, Provider, ProviderError
from deploysim.models.cache import ResponseCache, request_key
from deploysim.models.limiter import AdaptiveConcurrency, TokenBucket
from deploysim.models.policy import PrivacyRefusal
from deploysim.models.spec import ModelSpec, Prices
from deploysim.records import Message, ToolSpec

#: Retry-After hints above this are treated as this long (a bad hint must not stall a run)
MAX_PAUSE_S = 120.0


@dataclass(frozen=True)
class EndpointLimits:
    concurrency: int = 64
    initial_concurrency: int | None = None
    adaptive: bool = True
    rpm: int | None = None
    tpm: int | None = None
    timeout_s: float = 120.0
    max_attempts: int = 6
    deadline_s: float = 900.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    cooldown_s: float = 2.0
    #: output tokens assumed for budget and TPM when ``max_tokens`` is not set
    assumed_output_tokens: int = 1024

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> EndpointLimits:
        """The spec's limits; the embedded server gets at most two requests per decoding slot
        (more would only queue inside llama.cpp, where waiting counts against the timeout)."""
        concurrency = spec.concurrency
        if spec.provider == "embedded":
            concurrency = min(concurrency, 2 * spec.slots)
        return cls(concurrency=concurrency, initial_concurrency=spec.initial_concurrency,
                   adaptive=spec.adaptive, rpm=spec.rpm, tpm=spec.tpm, timeout_s=spec.timeout_s,
                   max_attempts=spec.max_attempts, deadline_s=spec.deadline_s)


@dataclass
class Outcome:
    generation: Generation | None
    error: str | None = None
    attempts: int = 0
    cost_usd: float = 0.0
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.generation is not None


@dataclass
class EndpointStats:
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    ok: int = 0
    failed: int = 0
    cache_hits: int = 0
    refused: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)


def estimate_input_tokens(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> int:
    """An upper-leaning guess for budgets and TPM: 3 characters per token (real text runs
    about 4) plus a chat-template overhead per message."""
    chars = sum(len(m.content) + sum(len(c.arguments) + len(c.name) for c in m.tool_calls) for m in messages)
    chars += sum(len(t.name) + len(t.description) + len(str(t.parameters)) for t in tools)
    return chars // 3 + 8 * len(messages) + 8


class ManagedProvider:
    def __init__(self, provider: Provider, *, spec_hash: str, limits: EndpointLimits | None = None,
                 prices: Prices | None = None, cache: ResponseCache | None = None,
                 budget: Budget | None = None, concurrency: AdaptiveConcurrency | None = None,
                 ledger: SpendLedger | None = None, owns_provider: bool = True,
                 rng: random.Random | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.provider = provider
        self.is_loopback = bool(getattr(provider, "is_loopback", False))
        self.spec_hash = spec_hash
        self.limits = lim = limits or EndpointLimits()
        self.prices = prices or Prices()
        self.cache = cache
        self.budget = budget
        #: write-ahead record of every attempt sent and answered (spend across invocations)
        self.ledger = ledger
        self.concurrency = concurrency or AdaptiveConcurrency(
            lim.concurrency, initial=lim.initial_concurrency, adaptive=lim.adaptive,
            cooldown_s=lim.cooldown_s, clock=clock)
        self.rpm = TokenBucket(lim.rpm, clock=clock) if lim.rpm else None
        self.tpm = TokenBucket(lim.tpm, clock=clock) if lim.tpm else None
        self.stats = EndpointStats()
        self._owns_provider = owns_provider
        self._rng = rng or random.Random()
        self._clock = clock
        self._sleep = sleep
        self._pause_until = 0.0
        self._priced = self.prices.input_per_mtok > 0 or self.prices.output_per_mtok > 0

    async def generate(self, request: ModelRequest) -> Generation:
        outcome = await self.run(request)
        if outcome.generation is None:
            raise ProviderError(outcome.error or "request failed", retryable=False)
        return outcome.generation

    async def run(self, request: ModelRequest, *, sample_index: int = 0, scope: str = "",
                  cache_key: str | None = None, lookup: bool = True) -> Outcome:
        """One request to its end. ``scope`` keeps cache entries of different items apart (a
        prefix id: identical text in two prefixes stays two independent draws).
        ``cache_key``/``lookup=False``: the caller already computed the key and looked it up in
        bulk (see ``ResponseCache.get_many``)."""
        check = getattr(self.provider, "check", None)
        if check is not None:
            try:
                check(request)
            except PrivacyRefusal as err:
                self.stats.refused += 1
                return Outcome(None, error=str(err), attempts=0)
        key = None
        if self.cache is not None:
            key = cache_key or request_key(self.spec_hash, request, sample_index, scope)
            hit = self.cache.get(key) if lookup else None
            if hit is not None:
                self.stats.cache_hits += 1
                return Outcome(hit, attempts=0, cached=True)
        need_tokens = self.tpm is not None or (self._priced and self.budget is not None)
        est_in = estimate_input_tokens(request.messages, request.tools) if need_tokens else 0
        est_out = request.params.max_tokens or self.limits.assumed_output_tokens
        reserved = self.prices.cost(est_in, est_out) if self._priced else 0.0
        if self.budget is not None:
            self.budget.reserve(reserved)
        actual = 0.0
        try:
            outcome = await self._attempts(request, est_in + est_out, reserved)
            if outcome.generation is not None:
                u = outcome.generation.usage
                actual = outcome.cost_usd = self.prices.cost(u.input_tokens, u.output_tokens)
                self.stats.cost_usd += actual
                if key is not None and self.cache is not None:
                    self.cache.put(key, self.spec_hash, outcome.generation)
            return outcome
        finally:
            if self.budget is not None:
                self.budget.settle(reserved, actual)

    async def _attempts(self, request: ModelRequest, est_tokens: int, reserved_usd: float) -> Outcome:
        lim, stats, clock = self.limits, self.stats, self._clock
        deadline: float | None = None  # starts when the first attempt is sent, not while queued here
        attempt = 0
        while True:
            attempt += 1
            err = await self._wait_turn(deadline, est_tokens)
            if err is None:
                gen, err, deadline = await self._one_attempt(request, deadline, est_tokens, reserved_usd)
                if gen is not None:
                    stats.ok += 1
                    stats.input_tokens += gen.usage.input_tokens
                    stats.output_tokens += gen.usage.output_tokens
                    return Outcome(gen, attempts=attempt)
            delay = min(lim.backoff_max_s, lim.backoff_base_s * 2 ** (attempt - 1))
            delay *= self._rng.uniform(0.5, 1.0)
            if err.retry_after is not None:
                delay = max(delay, min(err.retry_after, MAX_PAUSE_S))
            reason = None
            if isinstance(err, PrivacyRefusal):
                reason = str(err)
            elif not err.retryable:
                reason = f"{err} (not retryable, attempt {attempt})"
            elif attempt >= lim.max_attempts:
                reason = f"{err} (gave up after {attempt} attempts)"
            elif deadline is not None and clock() + delay > deadline:
                reason = f"{err} (deadline of {lim.deadline_s:g}s reached after {attempt} attempts)"
            if reason is not None:
                stats.failed += 1
                label = str(err.status) if err.status else str(err).split(":", 1)[0][:40]
                stats.errors[label] = stats.errors.get(label, 0) + 1
                return Outcome(None, error=reason, attempts=attempt)
            stats.retries += 1
            await self._sleep(delay)

    async def _wait_turn(self, deadline: float | None, est_tokens: int) -> ProviderError | None:
        """Wait out a Retry-After pause and the token buckets; an error if past the deadline."""
        wait = self._pause_until - self._clock()
        if self.rpm is not None:
            wait = max(wait, self.rpm.reserve(1))
        if self.tpm is not None:
            wait = max(wait, self.tpm.reserve(est_tokens))
        if wait > 0:
            if deadline is not None and self._clock() + wait > deadline:
                return ProviderError(f"rate limits need a {wait:.1f}s wait past the deadline",
                                     retryable=False)
            await self._sleep(wait)
        return None

    async def _one_attempt(self, request: ModelRequest, deadline: float | None, est_tokens: int,
                           reserved_usd: float = 0.0,
                           ) -> tuple[Generation | None, ProviderError, float | None]:
        await self.concurrency.acquire()
        rate_limited = clean = False
        err: ProviderError
        ledger, sent = self.ledger, 0
        try:
            paused = self._pause_until - self._clock()
            if paused > 0:  # a 429 arrived while this request waited for a slot
                await self._sleep(paused)
            if deadline is None:
                deadline = self._clock() + self.limits.deadline_s
            self.stats.requests += 1
            timeout = min(self.limits.timeout_s, max(0.001, deadline - self._clock()))
            if ledger is not None:
                sent = ledger.sent(reserved_usd)
            async with asyncio.timeout(timeout):
                gen = await self.provider.generate(request)
            clean = True
            if ledger is not None:
                u = gen.usage
                ledger.answered(sent, u.input_tokens, u.output_tokens,
                                self.prices.cost(u.input_tokens, u.output_tokens))
        except ProviderError as exc:
            err, rate_limited = exc, exc.rate_limited
        except TimeoutError:
            err = ProviderError(f"timed out after {timeout:.1f}s", retryable=True)
        except Exception as exc:  # a provider bug must still end as a stored error
            err = ProviderError(f"unexpected {type(exc).__name__}: {exc}", retryable=False)
        finally:
            shrunk = self.concurrency.release(rate_limited=rate_limited, clean=clean)
        if ledger is not None and not clean and (err.status is not None or isinstance(err, PrivacyRefusal)):
            # the endpoint answered with an error status (or nothing left the process): unpaid.
            # A timeout or a dropped connection stays unanswered: it may have been processed and
            # billed, so the ledger counts it as lost in flight.
            ledger.answered(sent)
        if clean:
            if self.tpm is not None:
                self.tpm.refund(est_tokens - gen.usage.input_tokens - gen.usage.output_tokens)
            return gen, ProviderError("", retryable=False), deadline
        if self.tpm is not None:
            self.tpm.refund(est_tokens)
        if rate_limited:
            self.stats.rate_limited += 1
            if shrunk and err.retry_after:
                pause = min(err.retry_after, MAX_PAUSE_S)
                self._pause_until = max(self._pause_until, self._clock() + pause)
                self.concurrency.hold_growth(pause)
        return None, err, deadline

    def flush(self) -> None:
        if self.cache is not None:
            self.cache.flush()

    async def aclose(self) -> None:
        self.flush()
        if self._owns_provider:
            await self.provider.aclose()
