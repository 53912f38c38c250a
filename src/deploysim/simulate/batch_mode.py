"""Simulation through the OpenAI Batch API (``batch_api = true`` on the model spec).

Pending pairs are sent in batches of up to ``batch_max_requests`` lines with custom ids
``prefix_id:sample_index``. The id of a submitted batch is kept in the run's metadata until
its results are stored, so a run killed while waiting resumes by collecting that batch instead
of paying for it twice. Lines that failed or are missing from the output become ``error``
completions with the reason (and are retried by the next run).
"""

from __future__ import annotations

from itertools import islice

from deploysim.engine.budget import BudgetExhausted
from deploysim.engine.managed import Outcome, estimate_input_tokens
from deploysim.engine.progress import StreamProgress
from deploysim.models.base import Generation, ProviderError
from deploysim.models.batch import BatchLine, OpenAIBatchClient
from deploysim.models.cache import request_key
from deploysim.models.hub import ModelHub
from deploysim.models.openai_compat import DEFAULT_OPENAI_URL
from deploysim.models.plugins import api_key
from deploysim.models.policy import PrivacyRefusal
from deploysim.models.wire import chat_body
from deploysim.records import Completion, RequestSettings
from deploysim.simulate.config import SimulateConfig
from deploysim.simulate.stage import (
    ArmPlan,
    account_completion,
    cache_scope,
    completion_for,
    pending_work,
    prepare,
    store_completions,
)
from deploysim.store.db import RunStore


def _meta_key(plan: ArmPlan) -> str:
    return f"simulate.batch.{plan.arm}.{plan.generator_hash}"


def _completions(plan: ArmPlan, results: dict[str, Generation | ProviderError],
                 cache_keys: dict[str, str], settings: dict[str, RequestSettings]) -> list[Completion]:
    out = []
    cache = plan.managed.cache
    for cid, result in results.items():
        prefix_id, _, sample = cid.rpartition(":")
        if isinstance(result, Generation):
            u = result.usage
            cost = plan.spec.prices.cost(u.input_tokens, u.output_tokens)
            outcome = Outcome(result, attempts=1, cost_usd=cost)
            if cache is not None and cid in cache_keys:
                cache.put(cache_keys[cid], plan.managed.spec_hash, result)
            out.append(completion_for(plan, prefix_id, int(sample), outcome, settings=settings.get(cid)))
        else:
            out.append(completion_for(plan, prefix_id, int(sample), error=f"batch: {result}",
                                      settings=settings.get(cid)))
    return out


def _store(store: RunStore, plan: ArmPlan, completions: list[Completion], progress: StreamProgress,
           settings: dict[str, RequestSettings]) -> None:
    by_id = {st.id: st for st in settings.values()}
    store_completions(store, completions, by_id, plan.stored_settings)
    for c in completions:
        account_completion(plan, c)
    r = plan.report
    progress.update(plan.task, done=r.already_done + r.ok, errors=r.errors,
                    tokens=r.input_tokens + r.output_tokens, cost=r.cost_usd)


async def run_batch_arm(store: RunStore, plan: ArmPlan, cfg: SimulateConfig,
                        progress: StreamProgress, models: ModelHub) -> None:
    spec = plan.spec
    if spec.provider != "openai":
        raise ValueError(f"models: batch_api is supported for provider 'openai' only, not {spec.provider!r}")
    key = api_key(spec, models.resources, "OPENAI_API_KEY", DEFAULT_OPENAI_URL)
    client = OpenAIBatchClient(spec.base_url or DEFAULT_OPENAI_URL, api_key=key,
                               poll_interval_s=cfg.batch_poll_s)
    budget, managed = plan.managed.budget, plan.managed
    gate = models.gated(spec)  # the send policy applies to batch lines exactly as to online calls
    settings: dict[str, RequestSettings] = {}
    try:
        for bid in store.get_meta(_meta_key(plan), []):  # left by a killed run
            batch = await client.wait(bid)
            _store(store, plan, _completions(plan, await client.results(batch), {}, {}), progress, {})
        store.set_meta(_meta_key(plan), [])
        work = pending_work(store, plan, cfg)
        while chunk := list(islice(work, cfg.batch_max_requests)):
            lines, now, keys = [], [], {}
            settings.clear()
            reserve = 0.0
            shared: dict[str, RequestSettings] = {}
            for prefix, sample in chunk:
                item = prepare(plan, prefix, sample, shared)
                cid = f"{prefix.id}:{sample}"
                settings[cid] = item.settings
                try:
                    gate.check(item.request)
                except PrivacyRefusal as err:
                    now.append(completion_for(plan, prefix.id, sample, error=str(err),
                                              settings=item.settings))
                    continue
                req = item.request
                if managed.cache is not None:
                    keys[cid] = request_key(managed.spec_hash, req, sample, cache_scope(cfg, prefix))
                    hit = managed.cache.get(keys[cid])
                    if hit is not None:
                        cached = Outcome(hit, attempts=0, cached=True)
                        now.append(completion_for(plan, prefix.id, sample, cached, settings=item.settings))
                        continue
                lines.append(BatchLine(cid, chat_body(spec.model, req.messages, req.tools, req.params)))
                reserve += spec.prices.cost(estimate_input_tokens(req.messages, req.tools),
                                            req.params.max_tokens or managed.limits.assumed_output_tokens)
            _store(store, plan, now, progress, settings)
            if not lines:
                continue
            if budget is not None:
                try:
                    budget.reserve(reserve)
                except BudgetExhausted as err:
                    plan.report.stopped_by_budget, plan.report.stop_reason = True, str(err)
                    return
            bid = await client.submit(lines)
            store.set_meta(_meta_key(plan), [bid])
            plan.report.batch_ids.append(bid)
            batch = await client.wait(bid)
            done = _completions(plan, await client.results(batch, [x.custom_id for x in lines]), keys,
                                settings)
            _store(store, plan, done, progress, settings)
            store.set_meta(_meta_key(plan), [])
            if budget is not None:
                budget.settle(reserve, sum(c.cost_usd for c in done))
        managed.flush()
    finally:
        await client.aclose()
