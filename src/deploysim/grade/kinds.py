"""Grader kinds: how a category's frozen grader is built.

A grader kind is a plugin registered under the ``deploysim.grader_kinds`` entry points: an
object with a ``name``, ``needs_judge`` (whether it calls the judge model) and
``build(categories, context)`` returning one :class:`~deploysim.grade.base.Grader` per category
id. A category file names a kind in ``[grader] default`` / ``offline``. The three built-ins —
``judge``, ``classifier`` and ``rules`` — register through the same entry points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from deploysim.grade.base import Grader
from deploysim.grade.config import GradeConfig
from deploysim.grade.taxonomy import Category
from deploysim.models.spec import ModelSpec


@dataclass(frozen=True)
class GraderContext:
    """What a kind may use to build graders: the grade config, the judge's policy-gated client
    and spec (None when no judge is configured), and the run's nonce key for judge delimiters."""

    config: GradeConfig
    judge: Any | None = None
    judge_spec: ModelSpec | None = None
    nonce_key: bytes | None = None


@runtime_checkable
class GraderKind(Protocol):
    name: str
    needs_judge: bool

    def build(self, categories: Sequence[Category], context: GraderContext) -> dict[str, Grader]: ...


class JudgeKind:
    """The LLM judge (any provider, structured output)."""

    name = "judge"
    needs_judge = True

    def build(self, categories: Sequence[Category], context: GraderContext) -> dict[str, Grader]:
        from deploysim.grade.judge import LLMJudge
        from deploysim.grade.judge_multi import MultiJudge

        if context.judge is None or context.judge_spec is None:
            raise ValueError("grade: an LLM judge is needed but no judge model is configured (grade.judge)")
        cfg = context.config
        if cfg.judge_mode == "multi" and categories:
            shared = MultiJudge(categories, context.judge, context.judge_spec, max_chars=cfg.judge_max_chars,
                                nonce_key=context.nonce_key)
            return dict(shared.graders())
        return {c.id: LLMJudge(c, context.judge, context.judge_spec, max_chars=cfg.judge_max_chars,
                               nonce_key=context.nonce_key) for c in categories}


class ClassifierKind:
    """The embedded MiniLM classifier heads shipped in ``grade/weights`` (one shared embedder)."""

    name = "classifier"
    needs_judge = False

    def build(self, categories: Sequence[Category], context: GraderContext) -> dict[str, Grader]:
        from deploysim.grade.classifier import (
            CachedEmbedder,
            ClassifierGrader,
            ClassifierHead,
            available_heads,
            weights_dir,
        )
        from deploysim.grade.graders import classifier_head
        from deploysim.models.embeddings import MiniLMEmbedder

        heads = {c.id: classifier_head(c) for c in categories}
        known = available_heads()
        missing = sorted({h for h in heads.values() if h not in known})
        if missing:
            users = ", ".join(c for c, h in heads.items() if h in missing)
            raise ValueError(f"grade: no classifier head {', '.join(missing)} (needed by {users}); "
                             f"heads exist for {', '.join(known) or 'nothing'}; set grade.graders to "
                             "\"rules\" or \"judge\" "
                             "for them")
        if not heads:
            return {}
        shared = CachedEmbedder(MiniLMEmbedder())
        folder = weights_dir()
        return {cid: ClassifierGrader(ClassifierHead.load(folder / f"{head}.json"), shared, category=cid)
                for cid, head in heads.items()}


class RulesKind:
    """Deterministic rule sets (built-in, or a category's own keyword patterns)."""

    name = "rules"
    needs_judge = False

    def build(self, categories: Sequence[Category], context: GraderContext) -> dict[str, Grader]:
        from deploysim.grade.rules import RuleGrader

        return {c.id: RuleGrader(c) for c in categories}


JUDGE = JudgeKind()
CLASSIFIER = ClassifierKind()
RULES = RulesKind()
