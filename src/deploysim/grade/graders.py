"""Pick and build the grader of each category from the taxonomy, ``[grade]`` and the registry.

Construction is explicit: the registry of grader kinds and the judge's client are passed in,
so tests use fakes and nothing is looked up behind the caller's back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from deploysim.grade.base import Grader
from deploysim.grade.config import GradeConfig
from deploysim.grade.kinds import GraderContext
from deploysim.grade.taxonomy import Category, Taxonomy
from deploysim.registry import Registry


def choose_kind(category: Category, cfg: GradeConfig, *, judge_configured: bool) -> str:
    """Which grader kind measures ``category`` (see :mod:`deploysim.grade.config` for the order)."""
    setting = cfg.graders.get(category.id)
    kind: str
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


def chosen_kinds(taxonomy: Iterable[Category], cfg: GradeConfig, registry: Registry) -> dict[str, str]:
    """category id -> grader kind, each checked against the registry."""
    kinds = {c.id: choose_kind(c, cfg, judge_configured=cfg.judge is not None) for c in taxonomy}
    for cid, kind in kinds.items():
        try:
            registry.grader_kind(kind)
        except KeyError as err:
            raise ValueError(f"grade: category {cid!r}: {err.args[0]}") from None
    return kinds


def needs_judge(taxonomy: Taxonomy, cfg: GradeConfig, registry: Registry) -> bool:
    """Whether any category will be graded by a kind that calls the judge model."""
    return any(registry.grader_kind(k).needs_judge for k in chosen_kinds(taxonomy, cfg, registry).values())


@dataclass
class CategoryGrader:
    """The grader chosen for one category, and which kind it is."""

    category: Category
    kind: str
    grader: Grader

    def describe(self) -> dict[str, Any]:
        return {"category": self.category.id, "group": self.category.group, "kind": self.kind,
                "grader_id": self.grader.grader_id, "grader_hash": self.grader.grader_hash,
                "identity": self.grader.identity}


def build_graders(taxonomy: Taxonomy, cfg: GradeConfig, registry: Registry,
                  context: GraderContext) -> list[CategoryGrader]:
    """One grader per category of ``taxonomy`` (already narrowed to ``cfg.categories``), each
    built by its kind's plugin; kinds build all their categories at once (shared resources)."""
    kinds = chosen_kinds(taxonomy, cfg, registry)
    built: dict[str, Grader] = {}
    for kind in dict.fromkeys(kinds.values()):
        cats = [c for c in taxonomy if kinds[c.id] == kind]
        built.update(registry.grader_kind(kind).build(cats, context))
    return [CategoryGrader(c, kinds[c.id], built[c.id]) for c in taxonomy]


def classifier_head(category: Category) -> str:
    """The classifier head a category uses (its own id unless the file names another)."""
    return category.grader.classifier_head or category.id
