"""Validate graders against human labels: per category, the agreement figures of
:mod:`deploysim.grade.agreement`, keyed by grader hash and label-set version.

Every labelled text becomes a :class:`~deploysim.grade.base.GradeItem` (the prompt as the user
message of a one-message prefix, the response as the completion), so any grader — classifier,
rules, LLM judge — is validated the same way it grades a run. Items a grader fails on are
counted as errors and left out of the table, never read as "no misbehaviour".

The stored record (``RunStore.put_grader_validation``) carries tp, fp, tn, fn and sensitivity
(= recall) and specificity with Wilson intervals, which is what the estimate stage's
Rogan–Gladen correction reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deploysim.config import RunConfig
from deploysim.grade.agreement import AgreementReport, Confusion, agreement
from deploysim.grade.base import GradeItem, Grader
from deploysim.grade.classifier import (
    CachedEmbedder,
    ClassifierGrader,
    ClassifierHead,
    available_heads,
    weights_dir,
)
from deploysim.grade.graders import classifier_head
from deploysim.grade.judge import LLMJudge
from deploysim.grade.label_sets import LabelledItem, LabelSet
from deploysim.grade.rules import RuleGrader
from deploysim.grade.taxonomy import Taxonomy
from deploysim.hashing import content_hash
from deploysim.models.embeddings import EmbedderConfig, MiniLMEmbedder
from deploysim.records import Completion, Judgment, Message, Prefix, utc_now
from deploysim.store.db import RunStore

BATCH = 256


def grade_item(item: LabelledItem, label_set: LabelSet) -> GradeItem:
    """The labelled text as a graded turn: prompt → user message, response → assistant message."""
    prefix_id = content_hash(["label-set", label_set.dataset_id, item.key])
    messages = (Message(role="user", content=item.prompt),)
    prefix = Prefix(id=prefix_id, conversation_id=f"{label_set.dataset_id}:{item.key}", turn_index=0,
                    messages=messages)
    spec_hash = label_set.sha256[:32]
    completion = Completion(id=Completion.make_id(prefix_id, "y_prod", spec_hash, 0), prefix_id=prefix_id,
                            arm="y_prod", model=f"label-set:{label_set.name}", generator_hash=spec_hash,
                            message=Message(role="assistant", content=item.response))
    return GradeItem(prefix=prefix, completion=completion)


@dataclass(frozen=True)
class CategoryValidation:
    category: str
    grader_id: str
    grader_hash: str
    dataset: str  # LabelSet.dataset_id
    report: AgreementReport
    labelled: int  # items with a human label for the category
    errors: int  # of those, items the grader failed on
    unknown: int  # items without a human label for the category

    def record(self) -> dict[str, Any]:
        """What is stored per (grader hash, category, dataset)."""
        return {"grader_id": self.grader_id, "labelled": self.labelled, "errors": self.errors,
                "unknown": self.unknown, **self.report.as_dict(), "created_at": utc_now()}


async def _judge_all(grader: Grader, items: Sequence[GradeItem], concurrency: int) -> list[Judgment]:
    """Batched when the grader offers ``grade_batch`` (embedding classifiers), else concurrent."""
    batch_fn = getattr(grader, "grade_batch", None)
    if callable(batch_fn):
        out: list[Judgment] = []
        for start in range(0, len(items), BATCH):
            out.extend(await batch_fn(items[start:start + BATCH]))
        return out
    gate = asyncio.Semaphore(concurrency)

    async def one(item: GradeItem) -> Judgment:
        async with gate:
            return await grader.grade(item)

    return list(await asyncio.gather(*(one(it) for it in items)))


async def validate_graders(graders: Mapping[str, Grader], label_set: LabelSet, *,
                           confidence: float = 0.95, concurrency: int = 16,
                           limit: int | None = None) -> list[CategoryValidation]:
    """Validate each grader on the categories the label set labels (in category order).

    ``graders`` maps category id → grader; categories without a grader are skipped (the caller
    reports them). ``limit`` keeps the first N labelled items per category (quick checks).
    """
    items = {it.key: grade_item(it, label_set) for it in label_set.items}
    results = []
    for category in label_set.categories():
        grader = graders.get(category)
        if grader is None:
            continue
        labelled = label_set.labelled(category)[:limit]
        judgments = await _judge_all(grader, [items[it.key] for it in labelled], concurrency)
        truth, predicted, errors = [], [], 0
        for it, judgment in zip(labelled, judgments, strict=True):
            if judgment.status != "ok" or judgment.label is None:
                errors += 1
                continue
            truth.append(it.labels[category])
            predicted.append(judgment.label)
        confusion = Confusion.from_labels(truth, predicted)
        results.append(CategoryValidation(category, grader.grader_id, grader.grader_hash,
                                          label_set.dataset_id, agreement(confusion, confidence),
                                          len(labelled), errors, label_set.unknown[category]))
    return results


def store_validations(store: RunStore, results: Sequence[CategoryValidation]) -> None:
    for r in results:
        store.put_grader_validation(r.grader_hash, r.category, r.dataset, r.record())


@dataclass
class ValidationGraders:
    """The graders of one kind for the categories asked, why the others have none, and the
    providers to close when done (a judge's endpoint)."""

    graders: dict[str, Grader]
    missing: dict[str, str]
    providers: list[Any]
    hub: Any = None

    async def aclose(self) -> None:
        for provider in self.providers:
            await provider.aclose()
        if self.hub is not None:
            self.hub.close()


def build_validation_graders(kind: str, categories: Sequence[str], taxonomy: Taxonomy, *,
                             config: RunConfig | None = None, threads: int = 2) -> ValidationGraders:
    """Graders of ``kind`` ("classifier", "rules", "judge") built as the grade stage builds them:
    the taxonomy names each category's classifier head and rule set; the judge is the run
    config's ``[grade] judge`` model."""
    graders: dict[str, Grader] = {}
    missing: dict[str, str] = {}
    providers: list[Any] = []
    hub = None
    known = [c for c in categories if c in taxonomy]
    missing.update({c: "not a category of the taxonomy" for c in categories if c not in taxonomy})
    if kind == "classifier":
        heads = set(available_heads())
        shared = CachedEmbedder(MiniLMEmbedder(EmbedderConfig(threads=threads)))
        for cid in known:
            head = classifier_head(taxonomy[cid])
            if head in heads:
                graders[cid] = ClassifierGrader(ClassifierHead.load(weights_dir() / f"{head}.json"), shared,
                                                category=cid)
            else:
                missing[cid] = f"no classifier head {head!r} (heads: {', '.join(sorted(heads))})"
    elif kind == "rules":
        for cid in known:
            if taxonomy[cid].grader.rules is None:
                missing[cid] = "the category has no rule set"
            else:
                graders[cid] = RuleGrader(taxonomy[cid])
    elif kind == "judge":
        judge_name = config.grade.judge if config is not None and config.grade is not None else None
        if config is None or judge_name is None:
            raise ValueError("--grader judge needs --run with a run file whose [grade] judge names a model")
        assert config.grade is not None
        from deploysim.assemble import model_spec, send_policy
        from deploysim.models.hub import ModelHub
        from deploysim.registry import Registry

        spec = model_spec(config, judge_name)
        hub = ModelHub(Registry.discover(), send_policy(config))  # the run's send policy applies
        provider = hub.open(spec)
        providers.append(provider)
        for cid in known:
            graders[cid] = LLMJudge(taxonomy[cid], provider, spec, max_chars=config.grade.judge_max_chars)
    else:
        raise ValueError(f"grader kind must be classifier, rules or judge, not {kind!r}")
    return ValidationGraders(graders, missing, providers, hub)
