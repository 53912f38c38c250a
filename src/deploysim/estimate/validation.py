"""Reading a grader's validation results (human labels vs grader) for the Rogan–Gladen
correction (DESIGN.md "Definitions": grader-error correction).

A validation record (``RunStore.grader_validations``) holds either the confusion counts
``tp, fp, tn, fn`` — preferred, they carry the sampling uncertainty of se and sp — or
``sensitivity`` and ``specificity`` with the number of human-positive and human-negative
items (``n_positive``/``n_negative``), from which the counts are recovered, or se and sp
alone (then treated as known). Several validation sets of one grader and category are pooled
by adding their counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deploysim.estimate.correction import ValidationCounts

_POSITIVE_KEYS = ("n_positive", "n_positives", "positives")
_NEGATIVE_KEYS = ("n_negative", "n_negatives", "negatives")


@dataclass(frozen=True)
class GraderValidation:
    """Pooled validation of one grader for one category; ``counts`` is None when only se and
    sp are known."""

    counts: ValidationCounts | None
    sensitivity: float
    specificity: float
    datasets: tuple[str, ...]

    def count_fields(self) -> dict[str, int]:
        if self.counts is None:
            return {}
        return {"tp": self.counts.tp, "fp": self.counts.fp, "tn": self.counts.tn, "fn": self.counts.fn}


def parse_validation_record(record: Mapping[str, Any]) -> ValidationCounts | tuple[float, float]:
    """Counts from one record, or (se, sp) when the record has no counts."""
    where = f"grader validation {record.get('dataset', '?')!r} of {record.get('category', '?')!r}"
    if all(key in record for key in ("tp", "fp", "tn", "fn")):
        try:
            return ValidationCounts(*(_count(record[key], key) for key in ("tp", "fp", "tn", "fn")))
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
    if "sensitivity" not in record or "specificity" not in record:
        raise ValueError(f"{where}: needs tp, fp, tn, fn or sensitivity and specificity "
                         f"(has {', '.join(sorted(record))})")
    se, sp = float(record["sensitivity"]), float(record["specificity"])
    if not (0.0 <= se <= 1.0 and 0.0 <= sp <= 1.0):
        raise ValueError(f"{where}: sensitivity and specificity must be in [0, 1], got {se}, {sp}")
    positives = next((record[key] for key in _POSITIVE_KEYS if key in record), None)
    negatives = next((record[key] for key in _NEGATIVE_KEYS if key in record), None)
    if positives is None or negatives is None:
        return se, sp
    pos, neg = _count(positives, "n_positive"), _count(negatives, "n_negative")
    tp, tn = round(se * pos), round(sp * neg)
    try:
        return ValidationCounts(tp=tp, fp=neg - tn, tn=tn, fn=pos - tp)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def pool_validations(records: Sequence[Mapping[str, Any]], category: str,
                     notes: list[str]) -> GraderValidation | None:
    """Pool the records of ``category``: counts add up; se/sp-only records are used only when
    no record has counts and they all agree. None when the grader was never validated."""
    mine = [r for r in records if r.get("category") == category]
    if not mine:
        return None
    counts: ValidationCounts | None = None
    known: set[tuple[float, float]] = set()
    datasets: list[str] = []
    for record in mine:
        parsed = parse_validation_record(record)
        datasets.append(str(record.get("dataset", "")))
        if isinstance(parsed, ValidationCounts):
            counts = parsed if counts is None else counts + parsed
        else:
            known.add(parsed)
    if counts is not None:
        if known:
            notes.append(f"{category}: validation records without counts were ignored in favour of "
                         "those with counts")
        return GraderValidation(counts, counts.sensitivity, counts.specificity, tuple(datasets))
    if len(known) > 1:
        notes.append(f"{category}: validation records disagree on sensitivity/specificity and have no "
                     "counts to pool; no correction")
        return None
    se, sp = known.pop()
    return GraderValidation(None, se, sp, tuple(datasets))


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or int(value) != value:
        raise ValueError(f"{name} must be a non-negative whole number, got {value!r}")
    return int(value)
