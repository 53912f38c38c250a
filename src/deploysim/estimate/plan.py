"""How many prefixes a simulation needs (issue 5 item 4), with the floor each size implies.

* **Relative precision** — the normal approximation to the binomial: the 95% half-width
  z·√(r(1−r)/n) is at most ε·r when

      n ≥ z²·(1 − r)/(ε²·r).

* **Detecting a change** r → c·r (default c = 1.5) between two independent arms of n items
  each, two-sided at level α with the given power, via the arcsine (variance-stabilising)
  transform φ = 2·asin√p, whose estimate has variance ≈ 1/n per arm. With Cohen's
  h = |φ(c·r) − φ(r)|:

      n per arm = 2·((z_{1−α/2} + z_{power})/h)².

  The arcsine z-test reaches the power by construction (checked by simulation in the
  tests); the Fisher exact test used by ``deploysim estimate`` is conservative, so its power
  at this n is a little lower — :func:`simulated_power` reports it.

Every size comes with its measurement floor (:mod:`deploysim.estimate.floor`, DESIGN.md
"Definitions"). Pure functions (simulation is seeded).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from deploysim.estimate.floor import measurement_floor
from deploysim.estimate.intervals import wilson_interval, z_value

PowerTest = Literal["arcsine", "fisher"]


@dataclass(frozen=True)
class Plan:
    """Sizes for one rate: for the relative precision, and per arm for detecting the change,
    each with the floor that size implies and the Wilson interval expected at k = r·n."""

    rate: float
    rel_precision: float
    confidence: float
    n_precision: int
    floor_precision: float
    expected_interval: tuple[float, float]
    change: float
    power: float
    alpha: float
    n_change_per_arm: int
    floor_change: float


def items_for_relative_precision(rate: float, rel_precision: float = 0.3, confidence: float = 0.95) -> int:
    """Smallest n with z·√(r(1−r)/n) ≤ rel_precision·r (normal approximation)."""
    _check_rate(rate)
    if rel_precision <= 0:
        raise ValueError(f"relative precision must be positive, got {rel_precision}")
    z = z_value(confidence)
    return max(1, math.ceil(z * z * (1.0 - rate) / (rel_precision**2 * rate)))


def cohens_h(rate_a: float, rate_b: float) -> float:
    """|2·asin√rate_a − 2·asin√rate_b|: the arcsine effect size of two proportions."""
    return abs(2.0 * math.asin(math.sqrt(rate_a)) - 2.0 * math.asin(math.sqrt(rate_b)))


def items_for_change(rate: float, change: float = 1.5, power: float = 0.8, alpha: float = 0.1) -> int:
    """Items per arm to detect rate → change·rate with a two-sided level-α two-sample test of
    the given power: 2·((z_{1−α/2} + z_{power})/h)² with Cohen's h."""
    _check_rate(rate)
    if change <= 0 or change == 1:
        raise ValueError(f"change must be a positive factor other than 1, got {change}")
    if not 0.0 < rate * change < 1.0:
        raise ValueError(f"rate × change = {rate * change:.4g} is not a rate in (0, 1)")
    if not 0.0 < power < 1.0 or not 0.0 < alpha < 1.0:
        raise ValueError("power and alpha must be in (0, 1)")
    h = cohens_h(rate * change, rate)
    z_total = z_value(1.0 - alpha) + float(stats.norm.ppf(power))
    return max(1, math.ceil(2.0 * (z_total / h) ** 2))


def plan(rate: float, rel_precision: float = 0.3, change: float = 1.5, power: float = 0.8,
         alpha: float = 0.1, confidence: float = 0.95) -> Plan:
    """Both sizes for one rate, each with its measurement floor."""
    n_precision = items_for_relative_precision(rate, rel_precision, confidence)
    n_change = items_for_change(rate, change, power, alpha)
    expected_k = min(n_precision, round(rate * n_precision))
    return Plan(rate=rate, rel_precision=rel_precision, confidence=confidence, n_precision=n_precision,
                floor_precision=measurement_floor(n_precision, confidence),
                expected_interval=wilson_interval(expected_k, n_precision, confidence),
                change=change, power=power, alpha=alpha, n_change_per_arm=n_change,
                floor_change=measurement_floor(n_change, confidence))


def simulated_power(rate_a: float, rate_b: float, n_per_arm: int, alpha: float = 0.1,
                    replications: int = 2000, seed: int = 0, test: PowerTest = "fisher") -> float:
    """Share of seeded replications in which the two-sided test rejects at level α, for two
    independent binomial arms of ``n_per_arm`` items: the simulation check of
    :func:`items_for_change`. ``test`` is the arcsine z-test or the Fisher exact test."""
    _check_rate(rate_a)
    _check_rate(rate_b)
    if n_per_arm <= 0 or replications <= 0:
        raise ValueError("n_per_arm and replications must be positive")
    rng = np.random.default_rng(seed)
    k_a = rng.binomial(n_per_arm, rate_a, replications)
    k_b = rng.binomial(n_per_arm, rate_b, replications)
    if test == "arcsine":
        phi_a = 2.0 * np.arcsin(np.sqrt(k_a / n_per_arm))
        phi_b = 2.0 * np.arcsin(np.sqrt(k_b / n_per_arm))
        statistic = np.abs(phi_a - phi_b) / math.sqrt(2.0 / n_per_arm)
        return float(np.mean(statistic >= z_value(1.0 - alpha)))
    if test == "fisher":
        pairs, counts = np.unique(np.stack([k_a, k_b], axis=1), axis=0, return_counts=True)
        rejected = 0
        for (ka, kb), count in zip(pairs.tolist(), counts.tolist(), strict=True):
            table = [[ka, n_per_arm - ka], [kb, n_per_arm - kb]]
            if stats.fisher_exact(table, alternative="two-sided").pvalue <= alpha:
                rejected += count
        return rejected / replications
    raise ValueError(f"unknown test {test!r}; known: arcsine, fisher")


def _check_rate(rate: float) -> None:
    if not 0.0 < rate < 1.0:
        raise ValueError(f"rate must be in (0, 1), got {rate}")
