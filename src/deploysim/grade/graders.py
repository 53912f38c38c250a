"""Pick and build the grader of each category from the taxonomy and ``[grade]``.

Construction is explicit: the judge's provider and the classifier loader are passed in, so
tests use fakes and nothing is looked up behind the caller's back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from deploysim.grade.base import Grader
from deploysim.grade.config import GradeConfig
from deploysim.grade.judge import LLMJudge
from deploysim.grade.rules import RuleGrader
from deploysim.grade.taxonomy import Category, Taxonomy
from deploysim.models.base import Provider
from deploysim.models.spec import ModelSpec

Kind = Literal["judge", "classifier", "rules"]
#: builds classifier graders: (head name per category id) -> grader per category id
ClassifierLoader = Callable[[dict[str, str]], dict[str, Grader]]


def choose_kind(category: Category, cfg: GradeConfig, *, judge_configured: bool) -> Kind:
    """Which grader measures ``category`` (see :mod:`deploysim.grade.config` for the order)."""
    setting = cfg.graders.get(category.id)
    kind: Kind
    if setting == "offline" or (setting is None and cfg.mode == "offline"):
        kind = category.grader.offline
    elif setting is not None:
        kind = setting
    elif cfg.mode == "judge":
        kind = "judge"
    elif category.grader.default == "judge" and not judge_configured:
        kind = category.grader.offline
    else:
        kind = category.grader.default
    if kind == "judge" and not judge_configured:
        raise ValueError(f"grade: category {category.id!r} is set to the LLM judge but grade.judge names "
                         f"no model; set grade.judge to a models entry or use grade.mode = \"offline\"")
    if kind == "rules" and category.grader.rules is None:
        raise ValueError(f"grade: category {category.id!r} has no rule set ({category.source} sets no "
                         f"grader.rules); choose another grader for it")
    return kind


def classifier_head(category: Category) -> str:
    return category.grader.classifier_head or category.id


@dataclass
class CategoryGrader:
    """The grader chosen for one category, and which kind it is."""

    category: Category
    kind: Kind
    grader: Grader

    def describe(self) -> dict[str, Any]:
        identity = getattr(self.grader, "identity", None)
        return {"category": self.category.id, "group": self.category.group, "kind": self.kind,
                "grader_id": self.grader.grader_id, "grader_hash": self.grader.grader_hash,
                "identity": identity if isinstance(identity, dict) else None}


def build_graders(taxonomy: Taxonomy, cfg: GradeConfig, *, judge: tuple[Provider, ModelSpec] | None = None,
                  classifiers: ClassifierLoader | None = None,
                  nonce_key: bytes | None = None) -> list[CategoryGrader]:
    """One grader per category of ``taxonomy`` (already narrowed to ``cfg.categories``).

    ``judge``: the provider and spec of the judge model (None = no judge configured);
    ``classifiers``: loader of embedded classifier heads (default: the shipped heads);
    ``nonce_key``: the run's secret for the judge's delimiter nonces (None = random nonces)."""
    kinds = {c.id: choose_kind(c, cfg, judge_configured=judge is not None or cfg.judge is not None)
             for c in taxonomy}
    if judge is None and "judge" in kinds.values():
        raise ValueError("grade: an LLM judge is needed but no judge provider was built")
    heads = {c.id: classifier_head(c) for c in taxonomy if kinds[c.id] == "classifier"}
    loaded: dict[str, Grader] = {}
    if heads:
        loaded = (classifiers or load_shipped_classifiers)(heads)
    out: list[CategoryGrader] = []
    for c in taxonomy:
        kind = kinds[c.id]
        grader: Grader
        if kind == "judge":
            assert judge is not None
            grader = LLMJudge(c, judge[0], judge[1], max_chars=cfg.judge_max_chars, nonce_key=nonce_key)
        elif kind == "classifier":
            grader = loaded[c.id]
        else:
            grader = RuleGrader(c)
        out.append(CategoryGrader(c, kind, grader))
    return out


def load_shipped_classifiers(heads: dict[str, str]) -> dict[str, Grader]:
    """The embedded MiniLM classifier heads shipped in ``grade/weights`` (one shared embedder)."""
    from deploysim.grade.classifier import (
        CachedEmbedder,
        ClassifierGrader,
        ClassifierHead,
        available_heads,
        weights_dir,
    )
    from deploysim.models.embeddings import MiniLMEmbedder

    known = available_heads()
    missing = sorted({h for h in heads.values() if h not in known})
    if missing:
        users = ", ".join(c for c, h in heads.items() if h in missing)
        raise ValueError(f"grade: no classifier head {', '.join(missing)} (needed by {users}); heads exist "
                         f"for {', '.join(known) or 'nothing'}; set grade.graders to \"rules\" or "
                         f"\"judge\" for them")
    shared = CachedEmbedder(MiniLMEmbedder())
    folder = weights_dir()
    return {cid: ClassifierGrader(ClassifierHead.load(folder / f"{head}.json"), shared, category=cid)
            for cid, head in heads.items()}


def needs_judge(taxonomy: Taxonomy, cfg: GradeConfig) -> bool:
    """Whether any category will be graded by the LLM judge under ``cfg``."""
    return any(choose_kind(c, cfg, judge_configured=cfg.judge is not None) == "judge" for c in taxonomy)
