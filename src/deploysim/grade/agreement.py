"""Agreement between a grader and human labels: pure functions on a 2×2 table, no I/O.

Conventions (human label = truth, grader label = prediction):

- precision = tp/(tp+fp); recall = sensitivity = tp/(tp+fn); specificity = tn/(tn+fp).
  Intervals: Wilson score (the proportions are binomial; DESIGN.md "Intervals").
- F1 = 2tp/(2tp+fp+fn). Interval: Wald on the delta-method standard error under the
  multinomial model of the table, SE² = 4·tp·(fp+fn)·(tp+fp+fn)/(2tp+fp+fn)⁴ (Flores et al.
  2022 give the same variance), clipped to [0, 1].
- Cohen's kappa κ = (p_o − p_e)/(1 − p_e). Interval: Wald on the large-sample standard error of
  Fleiss, Cohen & Everitt (1969), clipped to [−1, 1].

Wald intervals collapse to a point when the standard error is 0 (e.g. tp = 0 or perfect
agreement); :class:`Interval` flags that as ``degenerate`` so reports can say so rather than
present a zero-width interval as certainty. Undefined quantities (0/0) are ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scipy.stats import norm


@dataclass(frozen=True)
class Confusion:
    """Counts of (human, grader) label pairs on the items both labelled."""

    tp: int
    fp: int
    tn: int
    fn: int

    def __post_init__(self) -> None:
        if min(self.tp, self.fp, self.tn, self.fn) < 0:
            raise ValueError(f"confusion counts must be >= 0: {self}")

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    @classmethod
    def from_labels(cls, truth: Iterable[bool], predicted: Iterable[bool]) -> Confusion:
        tp = fp = tn = fn = 0
        pairs = list(zip(truth, predicted, strict=True))
        for t, p in pairs:
            if t and p:
                tp += 1
            elif p:
                fp += 1
            elif t:
                fn += 1
            else:
                tn += 1
        return cls(tp=tp, fp=fp, tn=tn, fn=fn)


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided interval; ``method`` names how it was computed."""

    value: float | None
    low: float | None
    high: float | None
    method: str

    @property
    def degenerate(self) -> bool:
        return self.value is not None and self.low == self.high

    def as_dict(self) -> dict[str, object]:
        return {"value": self.value, "low": self.low, "high": self.high, "method": self.method}


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return float(norm.ppf(0.5 + confidence / 2))


def wilson(k: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval for k successes in n trials (value None when n = 0)."""
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return Interval(None, None, None, "wilson")
    z = _z(confidence)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), "wilson")


def precision(c: Confusion, confidence: float = 0.95) -> Interval:
    return wilson(c.tp, c.tp + c.fp, confidence)


def recall(c: Confusion, confidence: float = 0.95) -> Interval:
    """Sensitivity: the share of human-positive items the grader flags."""
    return wilson(c.tp, c.tp + c.fn, confidence)


def specificity(c: Confusion, confidence: float = 0.95) -> Interval:
    """The share of human-negative items the grader leaves unflagged."""
    return wilson(c.tn, c.tn + c.fp, confidence)


def f1_se(c: Confusion) -> float | None:
    """Delta-method standard error of F1 under the multinomial model (None when F1 is undefined)."""
    d = 2 * c.tp + c.fp + c.fn
    if d == 0:
        return None
    errors = c.fp + c.fn
    return math.sqrt(4 * c.tp * errors * (c.tp + errors)) / d**2


def f1(c: Confusion, confidence: float = 0.95) -> Interval:
    d = 2 * c.tp + c.fp + c.fn
    if d == 0:
        return Interval(None, None, None, "delta-wald")
    value = 2 * c.tp / d
    half = _z(confidence) * (f1_se(c) or 0.0)
    return Interval(value, max(0.0, value - half), min(1.0, value + half), "delta-wald")


def kappa_value(table: Sequence[Sequence[int]]) -> float | None:
    """Cohen's kappa of a square k×k table (rows = rater A, columns = rater B); None when
    chance agreement is 1 (both raters used one and the same category only)."""
    n, po, pe, _, _ = _table_stats(table)
    if n == 0 or math.isclose(pe, 1.0):
        return None
    return (po - pe) / (1 - pe)


def kappa_se(table: Sequence[Sequence[int]]) -> float | None:
    """Large-sample standard error of kappa (Fleiss, Cohen & Everitt 1969, non-null case)."""
    n, po, pe, rows, cols = _table_stats(table)
    if n == 0 or math.isclose(pe, 1.0):
        return None
    k = len(table)
    p = [[table[i][j] / n for j in range(k)] for i in range(k)]
    a = sum(p[i][i] * ((1 - pe) - (cols[i] + rows[i]) * (1 - po)) ** 2 for i in range(k))
    b = (1 - po) ** 2 * sum(p[i][j] * (cols[i] + rows[j]) ** 2
                            for i in range(k) for j in range(k) if i != j)
    c = (po * pe - 2 * pe + po) ** 2
    var = (a + b - c) / (n * (1 - pe) ** 4)
    return math.sqrt(max(var, 0.0))


def kappa(c: Confusion, confidence: float = 0.95) -> Interval:
    """Cohen's kappa between human (rows) and grader (columns) on a binary table."""
    table = binary_table(c)
    value = kappa_value(table)
    if value is None:
        return Interval(None, None, None, "fce-wald")
    half = _z(confidence) * (kappa_se(table) or 0.0)
    return Interval(value, max(-1.0, value - half), min(1.0, value + half), "fce-wald")


def binary_table(c: Confusion) -> list[list[int]]:
    """[[tn, fp], [fn, tp]]: row = human label (0, 1), column = grader label (0, 1)."""
    return [[c.tn, c.fp], [c.fn, c.tp]]


def _table_stats(table: Sequence[Sequence[int]]) -> tuple[int, float, float, list[float], list[float]]:
    k = len(table)
    if k == 0 or any(len(row) != k for row in table):
        raise ValueError("kappa needs a square table")
    if any(x < 0 for row in table for x in row):
        raise ValueError("table counts must be >= 0")
    n = sum(sum(row) for row in table)
    if n == 0:
        return 0, 0.0, 0.0, [0.0] * k, [0.0] * k
    rows = [sum(table[i]) / n for i in range(k)]
    cols = [sum(table[i][j] for i in range(k)) / n for j in range(k)]
    po = sum(table[i][i] for i in range(k)) / n
    pe = sum(rows[i] * cols[i] for i in range(k))
    return n, po, pe, rows, cols


def roc_auc(scores: Sequence[float], truth: Sequence[bool]) -> float | None:
    """Area under the ROC curve = P(score of a random positive > that of a random negative),
    ties counting one half (the Mann–Whitney statistic). None without both classes."""
    if len(scores) != len(truth):
        raise ValueError("scores and truth differ in length")
    pairs = sorted(zip(scores, truth, strict=True), key=lambda st: st[0])
    n_pos = sum(1 for _, t in pairs if t)
    n_neg = len(pairs) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    rank_sum = 0.0
    i = 0
    while i < len(pairs):
        j = i
        while j + 1 < len(pairs) and pairs[j + 1][0] == pairs[i][0]:
            j += 1
        mid_rank = (i + j) / 2 + 1  # 1-based average rank of the tie block
        rank_sum += mid_rank * sum(1 for _, t in pairs[i:j + 1] if t)
        i = j + 1
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


@dataclass(frozen=True)
class AgreementReport:
    """Every figure ``graders validate`` reports for one category, with its counts."""

    confusion: Confusion
    precision: Interval
    recall: Interval
    specificity: Interval
    f1: Interval
    kappa: Interval
    confidence: float

    @property
    def prevalence(self) -> float | None:
        c = self.confusion
        return (c.tp + c.fn) / c.n if c.n else None

    def as_dict(self) -> dict[str, object]:
        c = self.confusion
        return {
            "n": c.n, "tp": c.tp, "fp": c.fp, "tn": c.tn, "fn": c.fn,
            "prevalence": self.prevalence,
            "precision": self.precision.as_dict(),
            "recall": self.recall.as_dict(),
            "sensitivity": self.recall.as_dict(),
            "specificity": self.specificity.as_dict(),
            "f1": self.f1.as_dict(),
            "kappa": self.kappa.as_dict(),
            "confidence": self.confidence,
        }


def agreement(c: Confusion, confidence: float = 0.95) -> AgreementReport:
    return AgreementReport(c, precision(c, confidence), recall(c, confidence),
                           specificity(c, confidence), f1(c, confidence), kappa(c, confidence),
                           confidence)
