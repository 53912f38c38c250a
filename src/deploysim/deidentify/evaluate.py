"""Recall and precision of de-identification against labelled spans (pure functions, no I/O).

Matching rule (stated in every benchmark print-out and in docs/privacy.md):

* a **gold span is found** when at least half of its non-space characters lie inside replaced
  spans whose type is compatible with the gold type;
* a **replaced span is correct** when at least half of its non-space characters lie inside
  gold spans of a compatible type.

Compatibility: the same type after mapping the dataset's names to ours
(:data:`GOLD_TO_OURS`), plus an address block covering the city, country and postcode that the
dataset labels ``GPE`` / ``ZIP_CODE`` separately.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

#: presidio-research / synth dataset entity names -> ours (None: we have no such type)
GOLD_TO_OURS: dict[str, str | None] = {
    "PERSON": "PERSON",
    "EMAIL_ADDRESS": "EMAIL_ADDRESS",
    "PHONE_NUMBER": "PHONE_NUMBER",
    "CREDIT_CARD": "CREDIT_CARD",
    "US_SSN": "US_SSN",
    "IP_ADDRESS": "IP_ADDRESS",
    "IBAN_CODE": "IBAN_CODE",
    "STREET_ADDRESS": "STREET_ADDRESS",
    "ZIP_CODE": "STREET_ADDRESS",
    "US_DRIVER_LICENSE": "US_DRIVER_LICENSE",
    "GPE": "LOCATION",
    "ORGANIZATION": "ORGANIZATION",
    "DATE_TIME": "DATE_TIME",
    "NRP": "NRP",
    "DOMAIN_NAME": "URL",
    "AGE": None,
    "TITLE": None,
}
#: extra (replaced type, gold type) pairs that count as a match
COMPATIBLE: frozenset[tuple[str, str]] = frozenset(
    {
        ("STREET_ADDRESS", "GPE"),
        ("STREET_ADDRESS", "ZIP_CODE"),
        ("ID_NUMBER", "US_DRIVER_LICENSE"),
    }
)


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    entity_type: str


@dataclass
class TypeScore:
    gold: int = 0
    found: int = 0
    predicted: int = 0
    correct: int = 0

    @property
    def recall(self) -> float | None:
        return self.found / self.gold if self.gold else None

    @property
    def precision(self) -> float | None:
        return self.correct / self.predicted if self.predicted else None


@dataclass
class Scores:
    """Per gold type: gold/found (recall); per replaced type: predicted/correct (precision)."""

    by_gold: dict[str, TypeScore] = field(default_factory=dict)
    by_predicted: dict[str, TypeScore] = field(default_factory=dict)
    missed: Counter[str] = field(default_factory=Counter)

    def recall(self, gold_type: str) -> float | None:
        return self.by_gold[gold_type].recall if gold_type in self.by_gold else None

    def precision(self, our_type: str) -> float | None:
        return self.by_predicted[our_type].precision if our_type in self.by_predicted else None


def compatible(predicted_type: str, gold_type: str) -> bool:
    return GOLD_TO_OURS.get(gold_type) == predicted_type or (predicted_type, gold_type) in COMPATIBLE


def _covered(text: str, span: Span, others: Iterable[Span]) -> float:
    """Share of ``span``'s non-space characters inside any of ``others``."""
    inside = [False] * (span.end - span.start)
    for o in others:
        for i in range(max(span.start, o.start), min(span.end, o.end)):
            inside[i - span.start] = True
    chars = [
        (c, flag) for c, flag in zip(text[span.start : span.end], inside, strict=True) if not c.isspace()
    ]
    return sum(flag for _, flag in chars) / len(chars) if chars else 0.0


def score_text(text: str, gold: Sequence[Span], predicted: Sequence[Span], scores: Scores) -> None:
    """Add one text's matches to ``scores`` (see the module docstring for the rule)."""
    for g in gold:
        entry = scores.by_gold.setdefault(g.entity_type, TypeScore())
        entry.gold += 1
        if _covered(text, g, [p for p in predicted if compatible(p.entity_type, g.entity_type)]) >= 0.5:
            entry.found += 1
        else:
            scores.missed[g.entity_type] += 1
    for p in predicted:
        entry = scores.by_predicted.setdefault(p.entity_type, TypeScore())
        entry.predicted += 1
        if _covered(text, p, [g for g in gold if compatible(p.entity_type, g.entity_type)]) >= 0.5:
            entry.correct += 1
