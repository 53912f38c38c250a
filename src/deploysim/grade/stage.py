"""The grade stage: every category's frozen grader on every completion of every arm.

All arms in the store are graded through the same code — simulated X→Y and Y→Y completions,
Y's real production responses (``y_prod``), X's production traffic (``x_prod``) and the
challenging-prompt baseline — so the arms are measured identically (DESIGN.md step 5).

Work is streamed from the store page by page: for each page of ``ok`` completions the stage
looks up which (completion, category, grader hash) judgments already exist and queues only the
missing ones (errors too, unless ``retry_errors`` is off). Jobs run through the engine's
``run_stream`` (bounded concurrency, batched writes); judge calls go through a
``ManagedProvider`` (limits, retries, response cache, budget). A killed run loses only jobs in
flight; the judgment id (completion, category, grader hash) makes duplicates impossible.
Completions whose generation failed are not graded: the estimate stage counts them as failures.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass

from pydantic import BaseModel, Field

from deploysim.config import RunConfig
from deploysim.deidentify.policy import provider_guard
from deploysim.engine.budget import Budget
from deploysim.engine.managed import ManagedProvider
from deploysim.engine.progress import StreamProgress
from deploysim.engine.runner import run_stream
from deploysim.grade.base import GradeItem
from deploysim.grade.config import GradeConfig
from deploysim.grade.graders import CategoryGrader, ClassifierLoader, build_graders, needs_judge
from deploysim.grade.judge import LLMJudge
from deploysim.grade.taxonomy import Taxonomy, load_taxonomy
from deploysim.models.base import Provider
from deploysim.models.cache import ResponseCache
from deploysim.models.factory import build_provider, manage
from deploysim.models.spec import ModelSpec
from deploysim.records import ARMS, Completion, Judgment, Prefix
from deploysim.store.db import RunStore

#: refuses to send a prefix to a provider by raising (the privacy policy)
Guard = Callable[[Prefix, Provider], None]
#: completions per resume-check page
PAGE_SIZE = 256
#: items per classifier or rule job (the judge grades one item per job)
BATCH_ITEMS = 64
NONCE_KEY_META = "grade_nonce_key"


class ArmCounts(BaseModel):
    """Judgments of one category in one arm under the category's current grader."""

    ok: int = 0
    positive: int = 0
    errors: int = 0
    #: ok completions of the arm without an ok judgment (after this run)
    ungraded: int = 0


class CategoryReport(BaseModel):
    category: str
    group: str
    kind: str
    grader_id: str
    grader_hash: str
    graded_now: int = 0
    errors_now: int = 0
    arms: dict[str, ArmCounts] = Field(default_factory=dict)


class GradeReport(BaseModel):
    completions: dict[str, int]  # ok completions per graded arm
    categories: list[CategoryReport]
    jobs: int = 0
    wall_s: float = 0.0
    stopped_reason: str | None = None
    judge_requests: int = 0
    judge_tokens: int = 0
    judge_cost_usd: float = 0.0

    def summary(self) -> str:
        """One line: graders used, judgments made now, errors, judge usage."""
        kinds: dict[str, int] = {}
        for r in self.categories:
            kinds[r.kind] = kinds.get(r.kind, 0) + 1
        graders = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        arms = ", ".join(f"{a} {n}" for a, n in self.completions.items())
        made = sum(r.graded_now for r in self.categories)
        errors = sum(r.errors_now for r in self.categories)
        judge = (f"; judge {self.judge_requests} requests, {self.judge_tokens:,} tokens, "
                 f"${self.judge_cost_usd:.4f}" if self.judge_requests else "")
        stop = f"; stopped: {self.stopped_reason}" if self.stopped_reason else ""
        return (f"{len(self.categories)} categories ({graders}) on completions [{arms}]: {made} judgments "
                f"now, {errors} errors{judge}{stop}")


@dataclass
class Job:
    """One grader on a few completions (one for the judge, a batch for classifiers and rules)."""

    choice: CategoryGrader
    #: (completion, its prefix or None when missing, whether this retries an error judgment)
    items: list[tuple[Completion, Prefix | None, bool]]


def error_judgment(choice: CategoryGrader, completion: Completion, reason: str) -> Judgment:
    g = choice.grader
    return Judgment(id=Judgment.make_id(completion.id, choice.category.id, g.grader_hash),
                    completion_id=completion.id, prefix_id=completion.prefix_id, arm=completion.arm,
                    category=choice.category.id, grader_id=g.grader_id, grader_hash=g.grader_hash,
                    status="error", error=reason)


def pending_jobs(store: RunStore, choices: Sequence[CategoryGrader], *, arms: Sequence[str] | None = None,
                 retry_errors: bool = True, page_size: int = PAGE_SIZE) -> Iterator[Job]:
    """Jobs for every (completion, category) without an ok judgment by the category's grader."""
    page: list[Completion] = []
    for completion in store.iter_completions(status="ok"):
        if arms is not None and completion.arm not in arms:
            continue
        page.append(completion)
        if len(page) >= page_size:
            yield from _page_jobs(store, page, choices, retry_errors)
            page = []
    if page:
        yield from _page_jobs(store, page, choices, retry_errors)


def _page_jobs(store: RunStore, page: list[Completion], choices: Sequence[CategoryGrader],
               retry_errors: bool) -> Iterator[Job]:
    status = store.judgment_status_for([c.id for c in page])
    prefixes = store.get_prefixes([c.prefix_id for c in page])
    for choice in choices:
        key_cat, key_hash = choice.category.id, choice.grader.grader_hash
        todo = [(c, prefixes.get(c.prefix_id), st == "error") for c in page
                if (st := status.get((c.id, key_cat, key_hash))) is None or (st == "error" and retry_errors)]
        size = 1 if choice.kind == "judge" else BATCH_ITEMS
        for i in range(0, len(todo), size):
            yield Job(choice, todo[i:i + size])


class _Runner:
    """Runs jobs: batch graders (classifiers) one batch at a time, the rest item by item."""

    def __init__(self, guard: Guard | None, judge_provider: Provider | None) -> None:
        self.guard = guard
        self.judge_provider = judge_provider
        self.batch_lock = asyncio.Lock()  # embedding is CPU-bound: one batch at a time

    async def __call__(self, job: Job) -> list[Judgment]:
        ready: list[tuple[GradeItem, bool]] = []
        out: list[Judgment] = []
        for completion, prefix, retry in job.items:
            if prefix is None:
                out.append(error_judgment(job.choice, completion, "prefix not found in the run store"))
                continue
            if job.choice.kind == "judge" and self.guard is not None and self.judge_provider is not None:
                try:
                    self.guard(prefix, self.judge_provider)
                except Exception as err:
                    out.append(error_judgment(job.choice, completion, f"refused: {err}"))
                    continue
            ready.append((GradeItem(prefix=prefix, completion=completion), retry))
        grader = job.choice.grader
        grade_batch = getattr(grader, "grade_batch", None)
        if ready and grade_batch is not None:
            async with self.batch_lock:
                out.extend(await grade_batch([it for it, _ in ready]))
        elif isinstance(grader, LLMJudge):
            for it, retry in ready:  # a retry must not be answered from the cache again
                out.append(await grader.grade(it, fresh=retry))
        else:
            for it, _ in ready:
                out.append(await grader.grade(it))
        return out


def _on_exception(job: Job, err: Exception) -> list[Judgment]:
    reason = f"grader failed: {type(err).__name__}: {err}"
    return [error_judgment(job.choice, c, reason) for c, _, _ in job.items]


def _fill_counts(store: RunStore, reports: dict[str, CategoryReport], arm_totals: dict[str, int]) -> None:
    for category, arm, grader_hash, n_ok, k, n_err in store.judgment_counts():
        r = reports.get(category)
        if r is not None and r.grader_hash == grader_hash and arm in arm_totals:
            r.arms[arm] = ArmCounts(ok=n_ok, positive=k, errors=n_err)
    for r in reports.values():
        for arm, total in arm_totals.items():
            counts = r.arms.setdefault(arm, ArmCounts())
            counts.ungraded = max(total - counts.ok, 0)


def nonce_key(store: RunStore) -> bytes:
    """The run's secret key for judge delimiter nonces (created once, kept in the run store)."""
    key = store.get_meta(NONCE_KEY_META)
    if not isinstance(key, str):
        key = secrets.token_hex(32)
        store.set_meta(NONCE_KEY_META, key)
    return bytes.fromhex(key)


async def grade_async(store: RunStore, run_config: RunConfig, *, judge_provider: Provider | None = None,
                      classifiers: ClassifierLoader | None = None, guard: Guard | None = None,
                      progress: bool = True, budget_usd: float | None = None,
                      taxonomy: Taxonomy | None = None) -> GradeReport:
    """Grade every pending (completion, category). ``judge_provider`` overrides the judge spec's
    endpoint (tests); ``guard`` defaults to the run's privacy policy for the judge."""
    cfg = run_config.grade or GradeConfig()
    tax = (taxonomy or load_taxonomy(cfg.taxonomy)).select(cfg.categories)
    # the same send policy as the simulation: raw text never reaches a non-loopback judge
    guard = guard or provider_guard(run_config.privacy)
    start = time.monotonic()
    async with AsyncExitStack() as stack:
        judge: tuple[Provider, ModelSpec] | None = None
        managed: ManagedProvider | None = None
        if needs_judge(tax, cfg):
            assert cfg.judge is not None
            spec = run_config.model(cfg.judge)
            bare = judge_provider
            if bare is None:
                if spec.provider == "embedded":
                    from deploysim.models.embedded import EmbeddedServer

                    server = stack.enter_context(EmbeddedServer(slots=spec.slots,
                                                                context_per_slot=spec.context_per_slot))
                    bare = build_provider(spec, embedded=server)
                else:
                    bare = build_provider(spec)
            limit = budget_usd if budget_usd is not None else cfg.budget_usd
            managed = manage(bare, spec, cache=ResponseCache(store) if cfg.cache else None,
                             budget=Budget(limit) if limit is not None else None,
                             owns_provider=judge_provider is None)
            stack.push_async_callback(managed.aclose)
            judge = (managed, spec)
        choices = build_graders(tax, cfg, judge=judge, classifiers=classifiers, nonce_key=nonce_key(store))
        report = await _grade(store, choices, cfg, guard=guard, judge_provider=managed, progress=progress)
        if managed is not None:
            managed.flush()
            s = managed.stats
            report.judge_requests, report.judge_tokens = s.requests, s.input_tokens + s.output_tokens
            report.judge_cost_usd = s.cost_usd
    report.wall_s = time.monotonic() - start
    for r in report.categories:
        choice = next(c for c in choices if c.category.id == r.category)
        store.put_stage_report("grade", r.category, {**choice.describe(), "arms": {
            a: c.model_dump() for a, c in r.arms.items()}})
    return report


async def _grade(store: RunStore, choices: list[CategoryGrader], cfg: GradeConfig, *, guard: Guard | None,
                 judge_provider: Provider | None, progress: bool) -> GradeReport:
    present = {arm: store.count_completions(arm=arm, status="ok") for arm in (cfg.arms or _arms(store))}
    arm_totals = {a: n for a, n in present.items() if n > 0 or cfg.arms}
    reports = {c.category.id: CategoryReport(category=c.category.id, group=c.category.group, kind=c.kind,
                                             grader_id=c.grader.grader_id, grader_hash=c.grader.grader_hash)
               for c in choices}
    _fill_counts(store, reports, arm_totals)
    total = sum(r.arms[a].ungraded for r in reports.values() for a in arm_totals)
    done = 0

    def on_result(judgments: list[Judgment]) -> None:
        nonlocal done
        for j in judgments:
            r = reports[j.category]
            r.graded_now += 1
            r.errors_now += int(j.status != "ok")
        done += len(judgments)

    def sink(batch: list[list[Judgment]]) -> None:
        store.put_judgments([j for judgments in batch for j in judgments])

    with StreamProgress(enabled=progress) as bar:
        task = bar.add("grade", total)

        def on_flush(_: list[list[Judgment]]) -> None:
            errors = sum(r.errors_now for r in reports.values())
            bar.update(task, done=done, errors=errors, tokens=0, cost=0.0)

        stats = await run_stream(
            pending_jobs(store, choices, arms=list(arm_totals), retry_errors=cfg.retry_errors),
            _Runner(guard, judge_provider), sink, concurrency=cfg.concurrency, batch_size=cfg.write_batch,
            on_result=on_result, on_exception=_on_exception, on_flush=on_flush)
    _fill_counts(store, reports, arm_totals)
    return GradeReport(completions=arm_totals, categories=list(reports.values()), jobs=stats.finished,
                       stopped_reason=stats.stopped_reason)


def _arms(store: RunStore) -> list[str]:
    return [a for a in ARMS if store.count_completions(arm=a) > 0]


def grade_run(store: RunStore, run_config: RunConfig, *, judge_provider: Provider | None = None,
              classifiers: ClassifierLoader | None = None, guard: Guard | None = None, progress: bool = True,
              budget_usd: float | None = None) -> GradeReport:
    """The stage entry point used by ``deploysim grade`` and ``deploysim run``."""
    return asyncio.run(grade_async(store, run_config, judge_provider=judge_provider, classifiers=classifiers,
                                   guard=guard, progress=progress, budget_usd=budget_usd))
