"""The grade stage: every category's frozen grader on every completion of the arms it is given.

All arms are graded through the same code — simulated X→Y and Y→Y completions, Y's real
production responses, X's production traffic, the challenging-prompt baseline, any variant — so
the arms are measured identically (DESIGN.md step 5): each grader sees the request that was
actually sent (system prompt, tools) and the whole graded turn.

Work is streamed from the store page by page: for each page of ``ok`` completions the stage
looks up which (completion, category, grader hash) judgments already exist and queues only the
missing ones (errors too, unless ``retry_errors`` is off). Jobs run through the engine's
``run_stream`` (bounded concurrency, batched writes); judge calls go through the hub's
policy-gated managed client (limits, retries, response cache, budget). A killed run loses only
jobs in flight; the judgment id (completion, category, grader hash) makes duplicates impossible.
Completions whose generation failed are not graded: the estimate stage counts them as failures.
A grader that raises turns its items into error judgments (counted, never dropped).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from deploysim.engine.budget import Budget
from deploysim.engine.progress import StreamProgress
from deploysim.engine.runner import run_stream
from deploysim.grade.base import GradeItem
from deploysim.grade.config import GradeConfig
from deploysim.grade.graders import CategoryGrader, build_graders, needs_judge
from deploysim.grade.judge import LLMJudge
from deploysim.grade.judge_multi import MultiJudgeCategory
from deploysim.grade.kinds import GraderContext
from deploysim.grade.taxonomy import Taxonomy
from deploysim.models.cache import ResponseCache
from deploysim.models.hub import ModelHub
from deploysim.models.spec import ModelSpec
from deploysim.records import Completion, Judgment, Prefix, RequestSettings
from deploysim.registry import Registry
from deploysim.stages import StageReport
from deploysim.store.db import RunStore

STAGE = "grade"
#: completions per resume-check page
PAGE_SIZE = 256
#: items per classifier or rule job (the judge grades one item per job)
BATCH_ITEMS = 64
#: the run's secret for judge delimiter nonces: a file of the run directory (mode 0600), never
#: in the run database, so no report or export can carry it
NONCE_KEY_FILE = ".judge-nonce-key"


class ArmCounts(BaseModel):
    """Judgments of one category in one arm under the category's current grader."""

    ok: int = 0
    positive: int = 0
    errors: int = 0
    abstained: int = 0
    #: ok completions of the arm without a final judgment (after this run)
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
    judge_refused: int = 0
    #: over every invocation (the spend ledger), with requests whose answer never came back
    judge_total_requests: int = 0
    judge_total_cost_usd: float = 0.0
    judge_lost_in_flight: int = 0
    judge_lost_reserved_usd: float = 0.0

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
        if self.judge_total_requests > self.judge_requests or self.judge_lost_in_flight:
            judge += (f" (all invocations: {self.judge_total_requests} requests, "
                      f"${self.judge_total_cost_usd:.4f}, {self.judge_lost_in_flight} lost in flight)")
        refused = f", {self.judge_refused} refused by the send policy" if self.judge_refused else ""
        stop = f"; stopped: {self.stopped_reason}" if self.stopped_reason else ""
        return (f"{len(self.categories)} categories ({graders}) on completions [{arms}]: {made} judgments "
                f"now, {errors} errors{refused}{judge}{stop}")

    @property
    def ungraded(self) -> int:
        return sum(c.ungraded for r in self.categories for c in r.arms.values())


@dataclass(frozen=True)
class GradeInputs:
    """What the grade stage needs: its config section, the taxonomy (already narrowed to the
    configured categories), the registry of grader kinds, the model hub (for the judge), the
    judge's spec, the arms to grade, and this invocation's spend cap."""

    config: GradeConfig
    taxonomy: Taxonomy
    registry: Registry
    models: ModelHub
    judge_spec: ModelSpec | None
    arms: Sequence[str]
    budget_usd: float | None = None
    progress: bool = True


@dataclass
class Job:
    """One grader on a few completions (one for the judge, a batch for classifiers and rules)."""

    choice: CategoryGrader
    #: (completion, its prefix or None when missing, its request settings, whether this
    #: retries an error judgment)
    items: list[tuple[Completion, Prefix | None, RequestSettings | None, bool]]


def error_judgment(choice: CategoryGrader, completion: Completion, reason: str) -> Judgment:
    g = choice.grader
    return Judgment(id=Judgment.make_id(completion.id, choice.category.id, g.grader_hash),
                    completion_id=completion.id, prefix_id=completion.prefix_id, arm=completion.arm,
                    category=choice.category.id, grader_id=g.grader_id, grader_hash=g.grader_hash,
                    status="error", error=reason)


def pending_jobs(store: RunStore, choices: Sequence[CategoryGrader], *, arms: Sequence[str],
                 retry_errors: bool = True, page_size: int = PAGE_SIZE) -> Iterator[Job]:
    """Jobs for every (completion, category) without a final judgment by the category's grader."""
    wanted = set(arms)
    page: list[Completion] = []
    for completion in store.iter_completions(status="ok"):
        if completion.arm not in wanted:
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
    settings = store.get_request_settings([c.request.settings_id for c in page if c.request is not None])
    for choice in choices:
        key_cat, key_hash = choice.category.id, choice.grader.grader_hash
        todo = [(c, prefixes.get(c.prefix_id), settings.get(c.request.settings_id) if c.request else None,
                 st == "error") for c in page
                if (st := status.get((c.id, key_cat, key_hash))) is None or (st == "error" and retry_errors)]
        size = 1 if choice.kind == "judge" else BATCH_ITEMS
        for i in range(0, len(todo), size):
            yield Job(choice, todo[i:i + size])


class _Runner:
    """Runs jobs: batch graders (classifiers) one batch at a time, the rest item by item."""

    def __init__(self) -> None:
        self.batch_lock = asyncio.Lock()  # embedding is CPU-bound: one batch at a time

    async def __call__(self, job: Job) -> list[Judgment]:
        ready: list[tuple[GradeItem, bool]] = []
        out: list[Judgment] = []
        for completion, prefix, settings, retry in job.items:
            if prefix is None:
                out.append(error_judgment(job.choice, completion, "prefix not found in the run store"))
                continue
            ready.append((GradeItem(prefix=prefix, completion=completion, settings=settings), retry))
        grader = job.choice.grader
        grade_batch = getattr(grader, "grade_batch", None)
        if ready and grade_batch is not None:
            async with self.batch_lock:
                out.extend(await grade_batch([it for it, _ in ready]))
        elif isinstance(grader, LLMJudge | MultiJudgeCategory):
            for it, retry in ready:  # a retry must not be answered from the cache again
                out.append(await grader.grade(it, fresh=retry))
        else:
            for it, _ in ready:
                out.append(await grader.grade(it))
        return out


def _on_exception(job: Job, err: Exception) -> list[Judgment]:
    reason = f"grader failed: {type(err).__name__}: {err}"
    return [error_judgment(job.choice, c, reason) for c, _, _, _ in job.items]


def _fill_counts(store: RunStore, reports: dict[str, CategoryReport], arm_totals: dict[str, int]) -> None:
    for row in store.judgment_counts():
        r = reports.get(row.category)
        if r is not None and r.grader_hash == row.grader_hash and row.arm in arm_totals:
            r.arms[row.arm] = ArmCounts(ok=row.ok, positive=row.positive, errors=row.errors,
                                        abstained=row.abstained)
    for r in reports.values():
        for arm, total in arm_totals.items():
            counts = r.arms.setdefault(arm, ArmCounts())
            counts.ungraded = max(total - counts.ok - counts.abstained, 0)


def nonce_key(run_dir: Path) -> bytes:
    """The run's secret key for judge delimiter nonces (created once, owner-readable only)."""
    path = run_dir / NONCE_KEY_FILE
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (FileNotFoundError, ValueError):
        pass
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key)
    return bytes.fromhex(key)


async def grade_async(inputs: GradeInputs, store: RunStore) -> tuple[GradeReport, list[CategoryGrader]]:
    """Grade every pending (completion, category) of the given arms."""
    cfg = inputs.config
    start = time.monotonic()
    async with AsyncExitStack() as stack:
        judge = None
        if needs_judge(inputs.taxonomy, cfg, inputs.registry):
            if inputs.judge_spec is None:
                raise ValueError("grade: an LLM judge is needed but grade.judge names no model")
            limit = inputs.budget_usd if inputs.budget_usd is not None else cfg.budget_usd
            scope = f"judge:{inputs.judge_spec.spec_hash()}"
            store.reconcile_ledgers()
            # the run file's cap holds across resumes (--budget caps this invocation alone)
            prior = store.spend_totals(STAGE, scope).worst_case_usd if inputs.budget_usd is None else 0.0
            ledger = store.open_ledger(STAGE, scope)
            stack.callback(store.finish_ledger, ledger)  # after the client closes (LIFO)
            judge = inputs.models.open(inputs.judge_spec, cache=ResponseCache(store) if cfg.cache else None,
                                       budget=Budget(limit, spent_usd=prior) if limit is not None else None,
                                       ledger=ledger)
            stack.push_async_callback(judge.aclose)
        context = GraderContext(config=cfg, judge=judge, judge_spec=inputs.judge_spec,
                                nonce_key=nonce_key(store.run_dir))
        choices = build_graders(inputs.taxonomy, cfg, inputs.registry, context)
        store.put_graders((c.grader.grader_hash, c.category.id, c.grader.grader_id, c.kind, c.grader.identity)
                          for c in choices)
        report = await _grade(store, choices, cfg, inputs.arms, progress=inputs.progress)
        if judge is not None:
            judge.flush()
            s = judge.stats
            report.judge_requests, report.judge_tokens = s.requests, s.input_tokens + s.output_tokens
            report.judge_cost_usd, report.judge_refused = s.cost_usd, s.refused
            total = store.spend_totals(STAGE, scope) + ledger.snapshot()
            report.judge_total_requests, report.judge_total_cost_usd = total.requests, total.cost_usd
            report.judge_lost_in_flight, report.judge_lost_reserved_usd = (total.lost_in_flight,
                                                                           total.lost_reserved_usd)
    report.wall_s = time.monotonic() - start
    for r in report.categories:
        choice = next(c for c in choices if c.category.id == r.category)
        store.put_stage_report(STAGE, r.category, {**choice.describe(), "arms": {
            a: c.model_dump() for a, c in r.arms.items()}})
    return report, choices


async def _grade(store: RunStore, choices: list[CategoryGrader], cfg: GradeConfig, arms: Sequence[str], *,
                 progress: bool) -> GradeReport:
    arm_totals = {arm: store.count_completions(arm=arm, status="ok") for arm in arms}
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
            r.errors_now += int(j.status == "error")
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
            _Runner(), sink, concurrency=cfg.concurrency, batch_size=cfg.write_batch,
            on_result=on_result, on_exception=_on_exception, on_flush=on_flush)
    _fill_counts(store, reports, arm_totals)
    return GradeReport(completions=arm_totals, categories=list(reports.values()), jobs=stats.finished,
                       stopped_reason=stats.stopped_reason)


def grade(inputs: GradeInputs, store: RunStore) -> GradeReport:
    """Grade and return the detailed report (also stored as ``grade`` stage reports)."""
    return asyncio.run(grade_async(inputs, store))[0]


def run(inputs: GradeInputs, store: RunStore) -> StageReport:
    """The stage entry point (``deploysim run``, ``deploysim grade``, validation, the demo)."""
    if not inputs.arms:
        return StageReport(stage=STAGE, status="skipped", detail="no arm with completions to grade")
    report = grade(inputs, store)
    errors = sum(c.errors for r in report.categories for c in r.arms.values())
    status = "stopped" if report.stopped_reason else ("incomplete" if report.ungraded or errors else "ran")
    return StageReport(stage=STAGE, status=status, detail=report.summary(),
                       data=report.model_dump(mode="json"))



