"""Comparing two arms for one category (DESIGN.md step 6 and "Definitions").

* X→Y vs Y production: two-sided **Fisher exact** test on the 2×2 table of (k, n − k) per
  arm (α = 0.1 by default, as in the source paper) and the **rate ratio** with the Katz
  log interval.
* X→Y vs Y→Y on shared prefixes: the paired **McNemar** test on the discordant pairs, exact
  or mid-p, and the paired rate ratio with its delta-method log interval.
* **Benjamini–Hochberg** adjusted p-values across categories, on request.

Zero-count rule (both ratios): when a ratio or its variance would need a division by zero,
½ is added to every cell of the 2×2 table (Haldane–Anscombe) and the result says so; when
neither arm has any event the ratio is undefined and returned as ``None``. Pure functions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from scipy import stats

from deploysim.estimate.intervals import z_value

McNemarMethod = Literal["exact", "midp"]


@dataclass(frozen=True)
class RateRatio:
    """r_a/r_b with a confidence interval; ``zero_corrected`` when ½ was added to each cell."""

    ratio: float | None
    lower: float | None
    upper: float | None
    zero_corrected: bool = False

    @property
    def interval(self) -> tuple[float, float] | None:
        return None if self.lower is None or self.upper is None else (self.lower, self.upper)


@dataclass(frozen=True)
class PairedTable:
    """Labels of arms a and b on the same prefixes: both positive, only a, only b, neither."""

    both: int
    only_a: int
    only_b: int
    neither: int

    def __post_init__(self) -> None:
        if min(self.both, self.only_a, self.only_b, self.neither) < 0:
            raise ValueError("paired table counts must be non-negative")

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[bool, bool]]) -> PairedTable:
        counts = [0, 0, 0, 0]
        for label_a, label_b in pairs:
            counts[(0 if label_a else 2) + (0 if label_b else 1)] += 1
        both, only_a, only_b, neither = counts
        return cls(both=both, only_a=only_a, only_b=only_b, neither=neither)

    @property
    def n(self) -> int:
        return self.both + self.only_a + self.only_b + self.neither

    @property
    def k_a(self) -> int:
        return self.both + self.only_a

    @property
    def k_b(self) -> int:
        return self.both + self.only_b


def fisher_exact_p(k_a: int, n_a: int, k_b: int, n_b: int) -> float:
    """Two-sided Fisher exact p-value for k_a of n_a vs k_b of n_b: the probability, under
    the hypergeometric null with both margins fixed, of a table no more likely than the one
    observed."""
    _check_arm(k_a, n_a, "a")
    _check_arm(k_b, n_b, "b")
    table = [[k_a, n_a - k_a], [k_b, n_b - k_b]]
    return float(stats.fisher_exact(table, alternative="two-sided").pvalue)


def mcnemar_p(only_a: int, only_b: int, method: McNemarMethod = "midp") -> float:
    """Two-sided McNemar test on the discordant pairs b = only_a, c = only_b.

    Under H0, b | b + c ~ Binomial(b + c, ½). Exact: min(1, 2·P(X ≤ min(b, c))). Mid-p:
    2·P(X ≤ min(b, c)) − P(X = min(b, c)), which keeps the size close to nominal without the
    exact test's conservatism (Fagerland, Lydersen & Laake 2013). 1 when no pair is discordant.
    """
    if only_a < 0 or only_b < 0:
        raise ValueError("discordant counts must be non-negative")
    total = only_a + only_b
    if total == 0:
        return 1.0
    low = min(only_a, only_b)
    tail = float(stats.binom.cdf(low, total, 0.5))
    if method == "exact":
        return min(1.0, 2.0 * tail)
    if method == "midp":
        return min(1.0, 2.0 * tail - float(stats.binom.pmf(low, total, 0.5)))
    raise ValueError(f"unknown McNemar method {method!r}; known: exact, midp")


def rate_ratio(k_a: int, n_a: int, k_b: int, n_b: int, confidence: float = 0.95) -> RateRatio:
    """(k_a/n_a)/(k_b/n_b) with the Katz log interval
    exp(log RR ± z·√(1/k_a − 1/n_a + 1/k_b − 1/n_b)); if either k is 0, ½ is added to each
    cell (k → k + ½, n → n + 1). Both zero: ratio undefined (``None``)."""
    _check_arm(k_a, n_a, "a")
    _check_arm(k_b, n_b, "b")
    if k_a == 0 and k_b == 0:
        return RateRatio(None, None, None)
    corrected = k_a == 0 or k_b == 0
    a, na, b, nb = (k_a + 0.5, n_a + 1.0, k_b + 0.5, n_b + 1.0) if corrected else (k_a, n_a, k_b, n_b)
    log_ratio = math.log((a / na) / (b / nb))
    se = math.sqrt(max(0.0, 1.0 / a - 1.0 / na + 1.0 / b - 1.0 / nb))
    return _ratio(log_ratio, se, confidence, corrected)


def paired_rate_ratio(table: PairedTable, confidence: float = 0.95) -> RateRatio:
    """Ratio of the two arms' rates on the same prefixes, (both + only_a)/(both + only_b),
    with the delta-method interval Var(log RR) = (only_a + only_b)/((both + only_a)(both + only_b))
    (Agresti, Categorical Data Analysis, §10.1). ½ is added to each cell when a margin or
    the discordant total is zero (which would make the ratio or its variance degenerate)."""
    if table.k_a == 0 and table.k_b == 0:
        return RateRatio(None, None, None)
    a, b, c = float(table.both), float(table.only_a), float(table.only_b)
    corrected = a + b == 0 or a + c == 0 or b + c == 0
    if corrected:
        a, b, c = a + 0.5, b + 0.5, c + 0.5
    log_ratio = math.log((a + b) / (a + c))
    se = math.sqrt((b + c) / ((a + b) * (a + c)))
    return _ratio(log_ratio, se, confidence, corrected)


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values, in input order: p̃_(i) = min_{j ≥ i} m·p_(j)/j,
    capped at 1. Rejecting p̃ ≤ α controls the false discovery rate at α across the tests."""
    m = len(p_values)
    for p in p_values:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p-values must be in [0, 1], got {p}")
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        index = order[rank - 1]
        running = min(running, p_values[index] * m / rank)
        adjusted[index] = running
    return adjusted


def _ratio(log_ratio: float, se: float, confidence: float, corrected: bool) -> RateRatio:
    z = z_value(confidence)
    return RateRatio(ratio=math.exp(log_ratio), lower=math.exp(log_ratio - z * se),
                     upper=math.exp(log_ratio + z * se), zero_corrected=corrected)


def _check_arm(k: int, n: int, arm: str) -> None:
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"arm {arm}: need 0 <= k <= n and n > 0, got k={k}, n={n}")
