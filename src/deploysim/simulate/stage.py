"""The simulate stage: candidate X on every sampled prefix (X→Y), optionally the incumbent Y
on the same prefixes (Y→Y control arm), ``samples`` completions per prefix.

Work is the store's pending list (pairs without an ``ok`` completion), streamed page by page;
completions go back in batched transactions. Killing the process at any moment loses only
requests in flight, which stay pending: a resumed run does exactly what is missing, and the
completion id (a hash of prefix, arm, spec hash, sample index) makes a duplicate impossible.
Online arms run together under one global concurrency cap (each endpoint keeps its own cap);
arms whose spec sets ``batch_api`` go through the provider's Batch API (``batch_mode``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from itertools import islice
from typing import cast

from pydantic import BaseModel
from rich.progress import TaskID

from deploysim.config import RunConfig
from deploysim.engine.budget import Budget
from deploysim.engine.managed import EndpointLimits, ManagedProvider, Outcome
from deploysim.engine.progress import StreamProgress
from deploysim.engine.runner import run_stream
from deploysim.models.base import Generation, Provider
from deploysim.models.cache import ResponseCache, request_key
from deploysim.models.embedded import EmbeddedServer
from deploysim.models.factory import build_provider, endpoint_key, manage
from deploysim.models.limiter import AdaptiveConcurrency
from deploysim.models.spec import ModelSpec, SamplingParams
from deploysim.records import ARM_POOL, Arm, Completion, Message, Prefix
from deploysim.simulate.config import SimulateConfig
from deploysim.simulate.request import build_messages, params_for_sample
from deploysim.store.db import RunStore

#: refuses a prefix for a provider by raising (the privacy policy plugs in here)
Guard = Callable[[Prefix, Provider], None]
#: arms this stage generates; each draws its prefixes from its pool (``records.ARM_POOL``):
#: X→Y and Y→Y on production prefixes, the candidate on the challenging-prompt set
#: (``challenge``) and on post-release traffic (``x_prod``, for validation demos)
SIM_ARMS = ("x_on_y", "y_on_y", "challenge", "x_prod")


class SimulateReport(BaseModel):
    arm: str
    model: str
    model_spec_hash: str
    provider: str
    total: int  # (prefix, sample) pairs this arm must cover
    already_done: int  # ok before this invocation
    ok: int = 0
    errors: int = 0
    refused: int = 0
    cached: int = 0
    pending: int = 0  # still without an ok completion at the end
    stopped_by_budget: bool = False
    stop_reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    peak_concurrency: int = 0
    wall_s: float = 0.0
    batch_ids: list[str] = []

    def summary(self) -> str:
        stop = f"; stopped: {self.stop_reason}" if self.stopped_by_budget else ""
        return (f"{self.arm} {self.model}: {self.ok} ok, {self.errors} errors ({self.refused} refused), "
                f"{self.cached} cached, {self.pending} pending; {self.input_tokens + self.output_tokens:,} "
                f"tokens, ${self.cost_usd:.4f}, {self.wall_s:.1f}s{stop}")


@dataclass
class ArmPlan:
    arm: str
    spec: ModelSpec
    spec_hash: str
    managed: ManagedProvider
    report: SimulateReport
    guard: Guard | None = None
    task: TaskID | None = None


def completion_for(plan: ArmPlan, prefix_id: str, sample: int, outcome: Outcome | None = None,
                   error: str | None = None) -> Completion:
    """The stored record of one (prefix, arm, sample): ok with the generated turn, or error."""
    cid = Completion.make_id(prefix_id, plan.arm, plan.spec_hash, sample)
    arm = cast(Arm, plan.arm)
    if outcome is None or outcome.generation is None:
        return Completion(id=cid, prefix_id=prefix_id, arm=arm, model=plan.spec.model,
                          model_spec_hash=plan.spec_hash, sample_index=sample, status="error",
                          error=error or (outcome.error if outcome else None) or "failed",
                          attempts=outcome.attempts if outcome else 0)
    gen = outcome.generation
    # the transcript is the whole turn; with tool simulation it will hold tool rounds too
    return Completion(id=cid, prefix_id=prefix_id, arm=arm, model=plan.spec.model,
                      model_spec_hash=plan.spec_hash, sample_index=sample, status="ok", message=gen.message,
                      transcript=(gen.message,), finish_reason=gen.finish_reason, usage=gen.usage,
                      latency_s=gen.latency_s, cost_usd=outcome.cost_usd, raw_id=gen.raw_id,
                      attempts=outcome.attempts)


@dataclass(slots=True)
class WorkItem:
    """One (prefix, sample) of one arm, with its request built and its cache key looked up."""

    plan: ArmPlan
    prefix: Prefix
    sample: int
    messages: tuple[Message, ...]
    params: SamplingParams
    cache_key: str | None = None
    hit: Generation | None = None


def prepare(plan: ArmPlan, prefix: Prefix, sample: int) -> WorkItem:
    return WorkItem(plan, prefix, sample, build_messages(prefix, plan.spec),
                    params_for_sample(plan.spec.params, sample))


def with_cache_hits(items: Iterator[WorkItem], cache: ResponseCache | None, chunk: int = 256,
                    ) -> Iterator[WorkItem]:
    """Look cache keys up a chunk at a time (one query per chunk instead of one per request)."""
    if cache is None:
        yield from items
        return
    while batch := list(islice(items, chunk)):
        for w in batch:
            w.cache_key = request_key(w.plan.spec_hash, w.messages, w.prefix.context.tools, w.params,
                                      w.sample)
        hits = cache.get_many([w.cache_key for w in batch if w.cache_key])
        for w in batch:
            w.hit = hits.get(w.cache_key or "")
            yield w


async def next_turn(item: WorkItem) -> Completion:
    """Generate the candidate's next assistant turn for one prefix and sample."""
    plan, prefix, sample = item.plan, item.prefix, item.sample
    if plan.guard is not None:
        try:
            plan.guard(prefix, plan.managed)
        except Exception as err:
            return completion_for(plan, prefix.id, sample, error=f"refused: {err}")
    if item.hit is not None:
        plan.managed.stats.cache_hits += 1
        return completion_for(plan, prefix.id, sample, Outcome(item.hit, attempts=0, cached=True))
    outcome = await plan.managed.run(item.messages, prefix.context.tools, item.params, sample_index=sample,
                                     cache_key=item.cache_key, lookup=item.cache_key is None)
    return completion_for(plan, prefix.id, sample, outcome)


def pending_work(store: RunStore, plan: ArmPlan, cfg: SimulateConfig) -> Iterator[tuple[Prefix, int]]:
    skip: set[tuple[str, int]] = set()
    if not cfg.retry_errors:
        skip = {(c.prefix_id, c.sample_index) for c in store.iter_completions(
            arm=plan.arm, status="error", model_spec_hash=plan.spec_hash)}
    for prefix, sample in store.iter_pending_prefixes(plan.arm, plan.spec_hash, plan.spec.samples):
        if (prefix.id, sample) not in skip:
            yield prefix, sample


def _interleave(streams: list[Iterator[WorkItem]]) -> Iterator[WorkItem]:
    active = list(streams)
    while active:
        for it in list(active):
            try:
                yield next(it)
            except StopIteration:
                active.remove(it)


def account_completion(plan: ArmPlan, c: Completion) -> None:
    r = plan.report
    if c.status == "ok":
        r.ok += 1
        r.input_tokens += c.usage.input_tokens
        r.output_tokens += c.usage.output_tokens
        r.cost_usd += c.cost_usd
        if c.attempts == 0:
            r.cached += 1
    else:
        r.errors += 1
        if c.error and c.error.startswith("refused:"):
            r.refused += 1


async def _run_online(store: RunStore, plans: list[ArmPlan], cfg: SimulateConfig,
                      progress: StreamProgress) -> None:
    by_arm = {p.arm: p for p in plans}

    def items(plan: ArmPlan) -> Iterator[WorkItem]:
        return (prepare(plan, prefix, sample) for prefix, sample in pending_work(store, plan, cfg))

    def on_exception(item: WorkItem, err: Exception) -> Completion:
        return completion_for(item.plan, item.prefix.id, item.sample,
                              error=f"internal error: {type(err).__name__}: {err}")

    def on_flush(batch: list[Completion]) -> None:
        for p in plans:
            r = p.report
            progress.update(p.task, done=r.already_done + r.ok, errors=r.errors,
                            tokens=r.input_tokens + r.output_tokens, cost=r.cost_usd)

    work = with_cache_hits(_interleave([items(p) for p in plans]), plans[0].managed.cache)
    stats = await run_stream(work, next_turn, store.put_completions,
                             concurrency=cfg.concurrency, batch_size=cfg.write_batch,
                             on_result=lambda c: account_completion(by_arm[c.arm], c),
                             on_exception=on_exception, on_flush=on_flush)
    for p in plans:
        p.managed.flush()
        if stats.stopped_reason:
            p.report.stopped_by_budget = True
            p.report.stop_reason = stats.stopped_reason


async def simulate_plans(store: RunStore, plans: list[ArmPlan], cfg: SimulateConfig, *,
                         progress: StreamProgress) -> list[SimulateReport]:
    start = time.monotonic()
    online = [p for p in plans if not p.spec.batch_api]
    if online:
        await _run_online(store, online, cfg, progress)
    for plan in plans:
        if plan.spec.batch_api:
            from deploysim.simulate.batch_mode import run_batch_arm

            await run_batch_arm(store, plan, cfg, progress)
    for plan in plans:
        r, m = plan.report, plan.managed
        r.requests, r.retries, r.rate_limited = m.stats.requests, m.stats.retries, m.stats.rate_limited
        r.peak_concurrency = m.concurrency.peak_in_flight
        r.pending = r.total - store.count_completions(arm=plan.arm, status="ok",
                                                      model_spec_hash=plan.spec_hash)
        r.wall_s = time.monotonic() - start
        store.put_stage_report("simulate", f"{plan.arm}:{plan.spec_hash}", r.model_dump(mode="json"))
    return [p.report for p in plans]


async def simulate_async(store: RunStore, arms: list[tuple[str, ModelSpec]], cfg: SimulateConfig, *,
                         provider: Provider | None = None, guard: Guard | None = None,
                         progress: bool = True, budget_usd: float | None = None) -> list[SimulateReport]:
    """Simulate the given (arm, spec) pairs; ``provider`` overrides the spec's endpoint for all."""
    for arm, _ in arms:
        if arm not in SIM_ARMS:
            raise ValueError(f"simulate: arm must be one of {', '.join(SIM_ARMS)}, not {arm!r}")
    async with AsyncExitStack() as stack:
        cache_store = None
        if cfg.cache and cfg.cache_dir is not None:
            cache_store = stack.enter_context(RunStore.open(cfg.cache_dir))
        cache = ResponseCache(cache_store or store) if cfg.cache else None
        prior = sum(store.completion_spend(a, s.spec_hash())[2] for a, s in arms)
        limit = budget_usd if budget_usd is not None else cfg.budget_usd
        budget = Budget(limit, spent_usd=prior) if limit is not None else None
        embedded: EmbeddedServer | None = None
        limiters: dict[str, AdaptiveConcurrency] = {}
        plans: list[ArmPlan] = []
        for arm, spec in arms:
            bare = provider
            if bare is None:
                if spec.provider == "embedded" and embedded is None:
                    embedded = stack.enter_context(
                        EmbeddedServer(slots=spec.slots, context_per_slot=spec.context_per_slot))
                bare = build_provider(spec, embedded=embedded)
            key = endpoint_key(spec) if provider is None else "override"
            if key not in limiters:
                cap = EndpointLimits.from_spec(spec).concurrency
                limiters[key] = AdaptiveConcurrency(cap, initial=spec.initial_concurrency,
                                                    adaptive=spec.adaptive)
            managed = manage(bare, spec, cache=cache, budget=budget, concurrency=limiters[key],
                             owns_provider=provider is None)
            stack.push_async_callback(managed.aclose)
            h = spec.spec_hash()
            done = store.count_completions(arm=arm, status="ok", model_spec_hash=h)
            total = store.count_prefixes(pool=ARM_POOL[arm]) * spec.samples
            report = SimulateReport(arm=arm, model=spec.model, model_spec_hash=h, provider=spec.provider,
                                    total=total, already_done=done)
            plans.append(ArmPlan(arm=arm, spec=spec, spec_hash=h, managed=managed, report=report,
                                 guard=guard))
        with StreamProgress(enabled=progress) as bar:
            for p in plans:
                p.task = bar.add(f"{p.arm} {p.spec.model}", p.report.total)
                bar.update(p.task, done=p.report.already_done, errors=0, tokens=0, cost=0.0)
            return await simulate_plans(store, plans, cfg, progress=bar)


def resolve_arms(run_config: RunConfig, arms: list[str] | None = None) -> list[tuple[str, ModelSpec]]:
    """(arm, spec) pairs from the run config: X is ``[models.<candidate>]`` or the embedded
    model when that entry does not exist; Y→Y runs when ``simulate.control`` is set. The
    ``challenge`` and ``x_prod`` arms run the candidate too, only when asked for."""
    cfg = run_config.simulate or SimulateConfig()
    wanted = arms or (["x_on_y", "y_on_y"] if cfg.control else ["x_on_y"])
    out: list[tuple[str, ModelSpec]] = []
    for arm in wanted:
        if arm in ("x_on_y", "challenge", "x_prod"):
            out.append((arm, run_config.models.get(cfg.candidate) or ModelSpec()))
        elif arm == "y_on_y":
            if not cfg.control:
                raise ValueError("simulate: arm y_on_y needs simulate.control "
                                 "(the name of the incumbent's model spec)")
            out.append((arm, run_config.model(cfg.control)))
        else:
            raise ValueError(f"simulate: arm must be one of {', '.join(SIM_ARMS)}, not {arm!r}")
    return out


def run_simulate(store: RunStore, run_config: RunConfig, *, arms: list[str] | None = None,
                 guard: Guard | None = None, progress: bool = True,
                 budget_usd: float | None = None) -> list[SimulateReport]:
    """The stage entry point used by ``deploysim simulate`` and ``deploysim run``."""
    cfg = run_config.simulate or SimulateConfig()
    return asyncio.run(simulate_async(store, resolve_arms(run_config, arms), cfg, guard=guard,
                                      progress=progress, budget_usd=budget_usd))


def simulate_arm(store: RunStore, spec: ModelSpec, arm: str, cfg: SimulateConfig | None = None, *,
                 provider: Provider | None = None, guard: Guard | None = None, progress: bool = True,
                 budget_usd: float | None = None) -> SimulateReport:
    """One arm with one spec (``provider`` overrides the spec's endpoint, e.g. in tests)."""
    reports = asyncio.run(simulate_async(store, [(arm, spec)], cfg or SimulateConfig(), provider=provider,
                                         guard=guard, progress=progress, budget_usd=budget_usd))
    return reports[0]
