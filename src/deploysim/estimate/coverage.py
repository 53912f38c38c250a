"""Coverage of the rate intervals: simulated (seeded numpy binomial draws) and exact.

Used by the coverage-study test and ``benchmarks/coverage_study.py`` to show that the
intervals of :mod:`deploysim.estimate.intervals` cover the true rate at close to the nominal
level over the rates and sample sizes deploysim works with. Intervals are evaluated once per
distinct k, so thousands of replications per cell cost little. Pure functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from deploysim.estimate.intervals import IntervalMethod, interval_bounds


@dataclass(frozen=True)
class CoverageCell:
    """Coverage of one interval method at one (rate, n): simulated share and exact value."""

    method: IntervalMethod
    rate: float
    n: int
    replications: int
    simulated: float
    exact: float

    @property
    def expected_events(self) -> float:
        return self.rate * self.n

    @property
    def monte_carlo_se(self) -> float:
        """Binomial standard error of the simulated share."""
        return float(np.sqrt(self.exact * (1.0 - self.exact) / self.replications))


def simulated_coverage(method: IntervalMethod, rate: float, n: int, replications: int,
                       rng: np.random.Generator, confidence: float = 0.95) -> float:
    """Share of ``replications`` draws k ~ Binomial(n, rate) whose interval contains rate."""
    draws = rng.binomial(n, rate, replications)
    values, counts = np.unique(draws, return_counts=True)
    lower, upper = interval_bounds(method, values, n, confidence)
    covered = (lower <= rate) & (rate <= upper)
    return float(counts[covered].sum() / replications)


def exact_coverage(method: IntervalMethod, rate: float, n: int, confidence: float = 0.95) -> float:
    """Σ_k P(K = k)·[rate ∈ interval(k)] over every k with non-negligible probability."""
    lo_k = int(stats.binom.ppf(1e-12, n, rate))
    hi_k = int(stats.binom.isf(1e-12, n, rate))
    k = np.arange(max(0, lo_k - 1), min(n, hi_k + 1) + 1)
    lower, upper = interval_bounds(method, k, n, confidence)
    covered = (lower <= rate) & (rate <= upper)
    return float(stats.binom.pmf(k[covered], n, rate).sum())


def coverage_table(rates: Sequence[float], sizes: Sequence[int], methods: Sequence[IntervalMethod],
                   replications: int, seed: int = 0, confidence: float = 0.95) -> list[CoverageCell]:
    """One :class:`CoverageCell` per (method, rate, n), simulated with one seeded generator."""
    rng = np.random.default_rng(seed)
    return [CoverageCell(method=method, rate=r, n=n, replications=replications,
                         simulated=simulated_coverage(method, r, n, replications, rng, confidence),
                         exact=exact_coverage(method, r, n, confidence))
            for method in methods for r in rates for n in sizes]


def format_coverage_table(cells: Sequence[CoverageCell]) -> str:
    """Plain-text table: one row per rate, one column per n, 'simulated (exact)' per cell;
    cells with n·p < 5 are marked with '*'."""
    lines: list[str] = []
    for method in dict.fromkeys(c.method for c in cells):
        mine = [c for c in cells if c.method == method]
        sizes = sorted({c.n for c in mine})
        rates = sorted({c.rate for c in mine})
        by_key = {(c.rate, c.n): c for c in mine}
        lines.append(f"{method} coverage, {mine[0].replications} replications per cell "
                     "(simulated, exact in brackets; * = n·p < 5)")
        lines.append(f"{'rate':>8} " + " ".join(f"{n:>17,}" for n in sizes))
        for r in rates:
            row = []
            for n in sizes:
                c = by_key[(r, n)]
                mark = "*" if c.expected_events < 5 else " "
                row.append(f"{c.simulated:7.3f} ({c.exact:.3f}){mark}")
            lines.append(f"{r:>8.0e} " + " ".join(f"{cell:>17}" for cell in row))
        lines.append("")
    return "\n".join(lines)
