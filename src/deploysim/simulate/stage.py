"""The simulate stage: every simulated arm it is given, on every prefix of the arm's pool.

An arm is data (:class:`~deploysim.arms.ArmSpec`): X→Y, Y→Y, the challenge baseline and any
variant run through the same code. Work is the store's pending list (pairs without an ``ok``
completion), streamed page by page; completions go back in batched transactions together with
the :class:`~deploysim.records.RequestSettings` they reference. Killing the process at any
moment loses only requests in flight, which stay pending: a resumed run does exactly what is
missing, and the completion id (a hash of prefix, arm, generator hash, sample index) makes a
duplicate impossible. Online arms run together under one global concurrency cap (each endpoint
keeps its own cap); arms whose spec sets ``batch_api`` go through the provider's Batch API.

Models are opened through the run's :class:`~deploysim.models.hub.ModelHub`, whose clients
enforce the send policy at the transport: a refused request becomes an ``error`` completion
whose reason starts with ``refused:``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from itertools import islice

from pydantic import BaseModel
from rich.progress import TaskID

from deploysim.arms import ArmSpec
from deploysim.engine.budget import Budget
from deploysim.engine.ledger import SpendLedger
from deploysim.engine.managed import EndpointLimits, ManagedProvider, Outcome
from deploysim.engine.progress import StreamProgress
from deploysim.engine.runner import run_stream
from deploysim.models.base import Generation, ModelRequest
from deploysim.models.cache import ResponseCache, request_key
from deploysim.models.hub import ModelHub
from deploysim.models.limiter import AdaptiveConcurrency
from deploysim.models.spec import ModelSpec, SamplingParams
from deploysim.records import Completion, Prefix, RequestSettings, SentRequest
from deploysim.request_settings import settings_for
from deploysim.simulate.config import SimulateConfig
from deploysim.simulate.request import build_messages, params_for_sample, tools_for
from deploysim.stages import StageReport
from deploysim.store.db import RunStore

STAGE = "simulate"


class SimulateReport(BaseModel):
    arm: str
    model: str
    generator_hash: str
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
    #: over every invocation of this arm (the spend ledger): requests sent, tokens, cost, and
    #: requests sent whose answer never came back (a kill, a timeout) with the most they can
    #: have cost
    total_requests: int = 0
    total_input_tokens: int = 0
    total_output_tokens: int = 0
    total_cost_usd: float = 0.0
    lost_in_flight: int = 0
    lost_reserved_usd: float = 0.0
    invocations: int = 0

    def summary(self) -> str:
        stop = f"; stopped: {self.stop_reason}" if self.stopped_by_budget else ""
        lost = (f", {self.lost_in_flight} lost in flight (at most ${self.lost_reserved_usd:.4f})"
                if self.lost_in_flight else "")
        tokens = self.total_input_tokens + self.total_output_tokens
        total = (f"; all {self.invocations} invocations: {self.total_requests} requests, "
                 f"{tokens:,} tokens, ${self.total_cost_usd:.4f}{lost}"
                 if self.invocations > 1 or self.lost_in_flight else "")
        return (f"{self.arm} {self.model}: {self.ok} ok, {self.errors} errors ({self.refused} refused), "
                f"{self.cached} cached, {self.pending} pending; {self.input_tokens + self.output_tokens:,} "
                f"tokens, ${self.cost_usd:.4f}, {self.wall_s:.1f}s{total}{stop}")


@dataclass(frozen=True)
class SimArm:
    """A simulated arm with its model spec resolved."""

    arm: ArmSpec
    spec: ModelSpec

    @property
    def generator_hash(self) -> str:
        return self.arm.generator_hash(self.spec)


@dataclass(frozen=True)
class SimulateInputs:
    """What the simulate stage needs: its config section, the arms to run, the model hub
    (registry + send policy), and this invocation's spend cap."""

    config: SimulateConfig
    arms: Sequence[SimArm]
    models: ModelHub
    budget_usd: float | None = None
    progress: bool = True


@dataclass
class ArmPlan:
    sim: SimArm
    managed: ManagedProvider
    endpoint: str
    report: SimulateReport
    task: TaskID | None = None
    #: request settings referenced by this invocation's completions and already stored
    stored_settings: set[str] = field(default_factory=set)
    ledger: SpendLedger | None = None

    @property
    def arm(self) -> str:
        return self.sim.arm.name

    @property
    def spec(self) -> ModelSpec:
        return self.sim.spec

    @property
    def generator_hash(self) -> str:
        return self.report.generator_hash


def completion_for(plan: ArmPlan, prefix_id: str, sample: int, outcome: Outcome | None = None,
                   error: str | None = None, settings: RequestSettings | None = None) -> Completion:
    """The stored record of one (prefix, arm, sample): ok with the generated turn, or error."""
    cid = Completion.make_id(prefix_id, plan.arm, plan.generator_hash, sample)
    sent = None if settings is None else SentRequest(settings_id=settings.id)
    if outcome is None or outcome.generation is None:
        return Completion(id=cid, prefix_id=prefix_id, arm=plan.arm, model=plan.spec.model,
                          generator_hash=plan.generator_hash, sample_index=sample, status="error",
                          error=error or (outcome.error if outcome else None) or "failed",
                          attempts=outcome.attempts if outcome else 0, request=sent)
    gen = outcome.generation
    if settings is not None:
        sent = SentRequest(settings_id=settings.id, reported_model=gen.reported_model,
                           fingerprint=gen.fingerprint, context_dropped=gen.context_dropped)
    # the transcript is the whole turn; with the tool loop it holds the tool rounds too
    return Completion(id=cid, prefix_id=prefix_id, arm=plan.arm, model=plan.spec.model,
                      generator_hash=plan.generator_hash, sample_index=sample, status="ok",
                      message=gen.message, transcript=(gen.message,), finish_reason=gen.finish_reason,
                      usage=gen.usage, latency_s=gen.latency_s, cost_usd=outcome.cost_usd, raw_id=gen.raw_id,
                      attempts=outcome.attempts, request=sent)


@dataclass(slots=True)
class WorkItem:
    """One (prefix, sample) of one arm, with its request built and its cache key looked up."""

    plan: ArmPlan
    prefix: Prefix
    sample: int
    request: ModelRequest
    settings: RequestSettings
    cache_key: str | None = None
    hit: Generation | None = None


def prepare(plan: ArmPlan, prefix: Prefix, sample: int, settings_cache: dict[str,
                                                                             RequestSettings]) -> WorkItem:
    env = plan.sim.arm.environment
    messages = build_messages(prefix, env, plan.spec)
    tools = tools_for(prefix, env)
    params: SamplingParams = params_for_sample(plan.spec.params, sample)
    settings = settings_for(plan.spec, plan.endpoint, messages, tools, params, plan.spec.wrapper_records())
    settings = settings_cache.setdefault(settings.id, settings)
    request = ModelRequest(messages=messages, tools=tools, params=params,
                           clearance=prefix.context.deidentified, purpose=plan.sim.arm.role,
                           product_context=prefix.context.product_context)
    return WorkItem(plan, prefix, sample, request, settings)


def cache_scope(cfg: SimulateConfig, prefix: Prefix) -> str:
    """Identical text in two prefixes is two independent draws unless asked otherwise."""
    return "" if cfg.cache_across_prefixes else prefix.id


def with_cache_hits(items: Iterator[WorkItem], cache: ResponseCache | None, cfg: SimulateConfig,
                    chunk: int = 256) -> Iterator[WorkItem]:
    """Look cache keys up a chunk at a time (one query per chunk instead of one per request)."""
    if cache is None:
        yield from items
        return
    while batch := list(islice(items, chunk)):
        for w in batch:
            w.cache_key = request_key(w.plan.managed.spec_hash, w.request, w.sample, cache_scope(cfg,
                                                                                                 w.prefix))
        hits = cache.get_many([w.cache_key for w in batch if w.cache_key])
        for w in batch:
            w.hit = hits.get(w.cache_key or "")
            yield w


async def next_turn(item: WorkItem) -> Completion:
    """Generate the arm model's next assistant turn for one prefix and sample."""
    plan, prefix, sample = item.plan, item.prefix, item.sample
    if item.hit is not None:
        plan.managed.stats.cache_hits += 1
        return completion_for(plan, prefix.id, sample, Outcome(item.hit, attempts=0, cached=True),
                              settings=item.settings)
    outcome = await plan.managed.run(item.request, sample_index=sample, cache_key=item.cache_key,
                                     lookup=item.cache_key is None)
    return completion_for(plan, prefix.id, sample, outcome, settings=item.settings)


def pending_work(store: RunStore, plan: ArmPlan, cfg: SimulateConfig) -> Iterator[tuple[Prefix, int]]:
    skip: set[tuple[str, int]] = set()
    if not cfg.retry_errors:
        skip = {(c.prefix_id, c.sample_index) for c in store.iter_completions(
            arm=plan.arm, status="error", generator_hash=plan.generator_hash)}
    for prefix, sample in store.iter_pending_prefixes(plan.arm, plan.generator_hash, plan.spec.samples,
                                                      pool=plan.sim.arm.pool):
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


def store_completions(store: RunStore, completions: Sequence[Completion],
                      settings: dict[str, RequestSettings], stored: set[str]) -> None:
    """Write the settings the batch references (once each), then the completions."""
    new = {c.request.settings_id for c in completions if c.request is not None} - stored
    if new:
        store.put_request_settings([settings[i] for i in new if i in settings])
        stored |= new
    store.put_completions(completions)


async def _run_online(store: RunStore, plans: list[ArmPlan], cfg: SimulateConfig,
                      progress: StreamProgress) -> None:
    by_arm = {p.arm: p for p in plans}
    settings: dict[str, RequestSettings] = {}
    stored: set[str] = set()

    def items(plan: ArmPlan) -> Iterator[WorkItem]:
        return (prepare(plan, prefix, sample, settings) for prefix, sample in pending_work(store, plan, cfg))

    def on_exception(item: WorkItem, err: Exception) -> Completion:
        return completion_for(item.plan, item.prefix.id, item.sample,
                              error=f"internal error: {type(err).__name__}: {err}", settings=item.settings)

    def on_flush(batch: list[Completion]) -> None:
        for p in plans:
            r = p.report
            progress.update(p.task, done=r.already_done + r.ok, errors=r.errors,
                            tokens=r.input_tokens + r.output_tokens, cost=r.cost_usd)

    work = with_cache_hits(_interleave([items(p) for p in plans]), plans[0].managed.cache, cfg)
    stats = await run_stream(work, next_turn, lambda batch: store_completions(store, batch, settings, stored),
                             concurrency=cfg.concurrency, batch_size=cfg.write_batch,
                             on_result=lambda c: account_completion(by_arm[c.arm], c),
                             on_exception=on_exception, on_flush=on_flush)
    for p in plans:
        p.managed.flush()
        if stats.stopped_reason:
            p.report.stopped_by_budget = True
            p.report.stop_reason = stats.stopped_reason


async def simulate_plans(store: RunStore, plans: list[ArmPlan], inputs: SimulateInputs, *,
                         progress: StreamProgress) -> list[SimulateReport]:
    cfg = inputs.config
    start = time.monotonic()
    online = [p for p in plans if not p.spec.batch_api]
    if online:
        await _run_online(store, online, cfg, progress)
    for plan in plans:
        if plan.spec.batch_api:
            from deploysim.simulate.batch_mode import run_batch_arm

            await run_batch_arm(store, plan, cfg, progress, inputs.models)
    for plan in plans:
        r, m = plan.report, plan.managed
        r.requests, r.retries, r.rate_limited = m.stats.requests, m.stats.retries, m.stats.rate_limited
        r.refused = max(r.refused, m.stats.refused)
        r.peak_concurrency = m.concurrency.peak_in_flight
        r.pending = r.total - store.count_completions(arm=plan.arm, status="ok",
                                                      generator_hash=plan.generator_hash)
        r.wall_s = time.monotonic() - start
        _spend_totals(store, plan)
        store.put_stage_report(STAGE, f"{plan.arm}:{plan.generator_hash}", r.model_dump(mode="json"))
    return [p.report for p in plans]


def _spend_totals(store: RunStore, plan: ArmPlan) -> None:
    """Fill the report's totals over every invocation: the stored ledgers plus this one; a
    batch arm (no online requests) is summed from its stored completions."""
    r = plan.report
    totals = store.spend_totals(STAGE, spend_scope(plan.sim))
    if plan.ledger is not None:
        totals = totals + plan.ledger.snapshot()
    if plan.spec.batch_api:
        tin, tout, cost = store.completion_spend(plan.arm, plan.generator_hash)
        totals.input_tokens, totals.output_tokens, totals.cost_usd = tin, tout, cost
    r.total_requests, r.total_input_tokens, r.total_output_tokens = (
        totals.requests, totals.input_tokens, totals.output_tokens)
    r.total_cost_usd, r.lost_in_flight, r.lost_reserved_usd, r.invocations = (
        totals.cost_usd, totals.lost_in_flight, totals.lost_reserved_usd, totals.invocations)


def spend_scope(sim: SimArm) -> str:
    """The ledger scope of an arm: its name and generator hash."""
    return f"{sim.arm.name}:{sim.generator_hash}"


async def simulate_async(inputs: SimulateInputs, store: RunStore) -> list[SimulateReport]:
    cfg = inputs.config
    async with AsyncExitStack() as stack:
        cache_store = None
        if cfg.cache and cfg.cache_dir is not None:
            cache_store = stack.enter_context(RunStore.open(cfg.cache_dir))
        cache = ResponseCache(cache_store or store) if cfg.cache else None
        store.reconcile_ledgers()
        # simulate.budget_usd caps the arms' spend over every invocation (what earlier ones
        # sent, including requests lost in flight at their worst case); --budget caps this one
        prior = 0.0 if inputs.budget_usd is not None else sum(
            max(store.completion_spend(s.arm.name, s.generator_hash)[2],
                store.spend_totals(STAGE, spend_scope(s)).worst_case_usd) for s in inputs.arms)
        limit = inputs.budget_usd if inputs.budget_usd is not None else cfg.budget_usd
        budget = Budget(limit, spent_usd=prior) if limit is not None else None
        limiters: dict[str, AdaptiveConcurrency] = {}
        plans: list[ArmPlan] = []
        for sim in inputs.arms:
            spec = sim.spec
            key = ModelHub.endpoint_key(spec)
            if key not in limiters:
                cap = EndpointLimits.from_spec(spec).concurrency
                limiters[key] = AdaptiveConcurrency(cap, initial=spec.initial_concurrency,
                                                    adaptive=spec.adaptive)
            ledger = store.open_ledger(STAGE, spend_scope(sim))
            stack.callback(store.finish_ledger, ledger)  # after the client closes (LIFO)
            managed = inputs.models.open(spec, cache=cache, budget=budget, concurrency=limiters[key],
                                         ledger=ledger)
            stack.push_async_callback(managed.aclose)
            h = sim.generator_hash
            done = store.count_completions(arm=sim.arm.name, status="ok", generator_hash=h)
            total = store.count_prefixes(pool=sim.arm.pool) * spec.samples
            report = SimulateReport(arm=sim.arm.name, model=spec.model, generator_hash=h,
                                    provider=spec.provider,
                                    total=total, already_done=done)
            plans.append(ArmPlan(sim=sim, managed=managed, endpoint=inputs.models.endpoint(spec),
                                 report=report, ledger=ledger))
        with StreamProgress(enabled=inputs.progress) as bar:
            for p in plans:
                p.task = bar.add(f"{p.arm} {p.spec.model}", p.report.total)
                bar.update(p.task, done=p.report.already_done, errors=0, tokens=0, cost=0.0)
            return await simulate_plans(store, plans, inputs, progress=bar)


def simulate(inputs: SimulateInputs, store: RunStore) -> list[SimulateReport]:
    """Simulate the given arms; returns one report per arm (also stored as stage reports)."""
    if not inputs.arms:
        return []
    return asyncio.run(simulate_async(inputs, store))


def run(inputs: SimulateInputs, store: RunStore) -> StageReport:
    """The stage entry point (called by the assembler for ``deploysim run``, ``deploysim
    simulate``, the challenge baseline and the demo)."""
    if not inputs.arms:
        return StageReport(stage=STAGE, status="skipped", detail="no simulated arm to run")
    reports = simulate(inputs, store)
    stopped = next((r.stop_reason for r in reports if r.stopped_by_budget), None)
    status = "stopped" if stopped else ("incomplete" if any(r.pending for r in reports) else "ran")
    return StageReport(stage=STAGE, status=status, detail="; ".join(r.summary() for r in reports),
                       data={"arms": [r.model_dump(mode="json") for r in reports]})

