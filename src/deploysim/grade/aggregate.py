"""Grouping judgments for aggregation, refusing to mix graders.

A rate is a measurement by one frozen grader; judgments of one category made by two graders
(two grader hashes) measure two different things and must never be pooled (DESIGN.md step 5).
:func:`group_judgments` is the guard for code that aggregates judgment records;
:func:`current_grader_hashes` tells which hash the last ``deploysim grade`` used per category.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from deploysim.records import Judgment
from deploysim.store.db import RunStore


class MixedGraderHashes(ValueError):
    """Judgments of one category carry more than one grader hash."""


@dataclass
class JudgmentGroup:
    """The judgments of one (category, arm), all by one grader."""

    category: str
    arm: str
    grader_hash: str
    ok: list[Judgment] = field(default_factory=list)
    errors: list[Judgment] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.ok)

    @property
    def k(self) -> int:
        return sum(1 for j in self.ok if j.label)


def group_judgments(judgments: Iterable[Judgment], *,
                    pinned: Mapping[str, str] | None = None) -> dict[tuple[str, str], JudgmentGroup]:
    """Group by (category, arm). With ``pinned`` (category -> grader hash) only that grader's
    judgments are kept for a pinned category; any other category seen with more than one hash
    raises :class:`MixedGraderHashes` naming the hashes."""
    pins = dict(pinned or {})
    groups: dict[tuple[str, str], JudgmentGroup] = {}
    hashes: dict[str, set[str]] = defaultdict(set)
    for j in judgments:
        if j.category in pins and j.grader_hash != pins[j.category]:
            continue
        hashes[j.category].add(j.grader_hash)
        g = groups.setdefault((j.category, j.arm), JudgmentGroup(j.category, j.arm, j.grader_hash))
        (g.ok if j.status == "ok" else g.errors).append(j)
    mixed = {c: sorted(h) for c, h in hashes.items() if len(h) > 1}
    if mixed:
        detail = "; ".join(f"{c}: {', '.join(h[:12] for h in hs)}" for c, hs in sorted(mixed.items()))
        raise MixedGraderHashes(f"judgments of one category come from different graders ({detail}); "
                                f"aggregate one grader hash per category")
    return groups


def current_grader_hashes(store: RunStore) -> dict[str, str]:
    """category -> grader hash used by the most recent grade stage run of ``store``."""
    return {category: str(rec["grader_hash"]) for category, rec in store.stage_reports("grade").items()
            if isinstance(rec, dict) and "grader_hash" in rec}
