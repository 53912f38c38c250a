"""Scores of a forecast against realised production counts (DESIGN.md "Definitions").

Pure functions, no I/O. Notation: a forecast for one category states a point rate p̂ and a
predictive distribution for X's production count (:mod:`deploysim.estimate.predictive`); the
realised outcome is k_X events among n_X graded production items of the released model X, and
the previous production rate is k_Y / n_Y.

Continuity rule for zero counts (stated once, used everywhere a ratio of rates is formed):
a rate estimated from k of n is taken as (k + ½) / (n + 1) when k = 0 or k = n, so ratios and
logarithms stay finite; a forecast p̂ of exactly 0 or 1 is clipped to [1e-12, 1 − 1e-12].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from deploysim.estimate.comparisons import rate_ratio
from deploysim.estimate.intervals import wilson_interval
from deploysim.estimate.predictive import (
    BetaBinomialPredictive,
    LogNormalBinomialPredictive,
    central_count_interval,
)

#: a realised change counts as a move when r_X / r_Y >= MOVE or <= 1 / MOVE ...
MOVE_FACTOR = 1.5
#: ... and the (1 − MOVE_ALPHA) Katz interval of r_X / r_Y excludes 1
MOVE_ALPHA = 0.1
_EPS = 1e-12

Predictive = BetaBinomialPredictive | LogNormalBinomialPredictive


def smoothed_rate(k: int, n: int) -> float:
    """k/n, or (k + ½)/(n + 1) at the boundaries (the continuity rule above)."""
    if n <= 0:
        raise ValueError("n must be positive")
    if k < 0 or k > n:
        raise ValueError(f"k={k} outside [0, n={n}]")
    if k == 0 or k == n:
        return (k + 0.5) / (n + 1)
    return k / n


def _clip(p: float) -> float:
    return min(max(p, _EPS), 1 - _EPS)


def direction(forecast_rate: float, reference_rate: float, *, tolerance: float = 0.0) -> int:
    """Sign of log(forecast / reference): +1 up, −1 down, 0 unchanged (|log ratio| <= tolerance)."""
    lr = math.log(_clip(forecast_rate)) - math.log(_clip(reference_rate))
    if abs(lr) <= tolerance:
        return 0
    return 1 if lr > 0 else -1


def realised_move(k_x: int, n_x: int, k_y: int, n_y: int, factor: float = MOVE_FACTOR,
                  alpha: float = MOVE_ALPHA) -> int:
    """+1 / −1 when the realised rate moved by at least ``factor`` up / down *and* the change is
    distinguishable from noise in both counts — the (1 − α) Katz interval of r_X / r_Y
    (:func:`deploysim.estimate.comparisons.rate_ratio`, Haldane ½ rule at zero counts) lies
    entirely above / below 1 — else 0 (not moved, or not measurably)."""
    if factor <= 1.0:
        raise ValueError(f"move factor must be > 1, got {factor}")
    rr = rate_ratio(k_x, n_x, k_y, n_y, confidence=1.0 - alpha)
    if rr.ratio is None or rr.lower is None or rr.upper is None:
        return 0
    if rr.ratio >= factor and rr.lower > 1.0:
        return 1
    if rr.ratio <= 1.0 / factor and rr.upper < 1.0:
        return -1
    return 0


@dataclass(frozen=True)
class DirectionalAccuracy:
    """Directional accuracy of one method over the categories that moved.

    ``claim`` is False when the method makes no directional claim (every direction None, e.g.
    previous production): then accuracy, interval and p-value are undefined ("n/a").
    ``interval`` is the Wilson interval of correct/moved; ``p_value`` the one-sided exact
    binomial test of H0: accuracy = ½ against accuracy > ½."""

    claim: bool
    moved: int
    correct: int
    accuracy: float | None
    interval: tuple[float, float] | None
    p_value: float | None


def directional_accuracy(forecast_directions: Sequence[int | None], realised_moves: Sequence[int],
                         confidence: float = 0.95) -> DirectionalAccuracy:
    """Share of moved categories (realised move ≠ 0, among those with a directional claim)
    whose forecast direction equals the realised move. A "no change" forecast (0) on a moved
    category counts as wrong; a ``None`` direction is no claim and is not counted."""
    if len(forecast_directions) != len(realised_moves):
        raise ValueError("forecast and realised sequences differ in length")
    claims = [(f, r) for f, r in zip(forecast_directions, realised_moves, strict=True) if f is not None]
    if not claims:
        return DirectionalAccuracy(claim=False, moved=sum(1 for r in realised_moves if r != 0), correct=0,
                                   accuracy=None, interval=None, p_value=None)
    moved = [(f, r) for f, r in claims if r != 0]
    if not moved:
        return DirectionalAccuracy(claim=True, moved=0, correct=0, accuracy=None, interval=None, p_value=None)
    correct = sum(1 for f, r in moved if f == r)
    return DirectionalAccuracy(claim=True, moved=len(moved), correct=correct, accuracy=correct / len(moved),
                               interval=wilson_interval(correct, len(moved), confidence),
                               p_value=float(stats.binom.sf(correct - 1, len(moved), 0.5)))


def symmetric_multiplicative_error(forecast_rate: float, k_x: int, n_x: int) -> float:
    """max(p̂/p, p/p̂) with p the realised rate under the continuity rule; 1 is perfect."""
    p = smoothed_rate(k_x, n_x)
    q = _clip(forecast_rate)
    return max(q / p, p / q)


def binomial_nll(k: int, n: int, p: float) -> float:
    """−log Binom(k | n, p)."""
    return float(-stats.binom.logpmf(k, n, _clip(p)))


def predictive_nll(predictive: Predictive, k: int, n: int) -> float:
    """−log P(k_X = k | n_X = n) under the forecast's predictive distribution (DESIGN.md:
    Beta–binomial for a Beta forecast; log-normal–binomial mixture with the discrepancy term)."""
    return -predictive.logpmf(k, n)


def nll_regret(k: int, n: int, nll: float) -> float:
    """NLL(forecast) − NLL(k/n): the excess over the oracle that knew the realised rate."""
    return nll - binomial_nll(k, n, k / n)


def predictive_interval(predictive: Predictive, n: int, level: float) -> tuple[int, int]:
    """Equal-tailed interval of the predictive distribution of k_X at n_X = n (DESIGN.md:
    coverage is judged against the predictive distribution of k_X)."""
    return central_count_interval(predictive, n, level)


def covered(predictive: Predictive, k: int, n: int, level: float) -> bool:
    """Whether the realised count k lies in the central ``level`` predictive interval of k_X
    at n_X = n. With the interval [lo, hi] of :func:`predictive_interval`, k ∈ [lo, hi] ⇔
    F(k) ≥ (1 − L)/2 and F(k − 1) < (1 + L)/2, so two cdf values decide it."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return predictive.cdf(k, n) >= (1.0 - level) / 2.0 and predictive.cdf(k - 1, n) < (1.0 + level) / 2.0


@dataclass(frozen=True)
class FunnelPoint:
    """The ``level`` band of the symmetric multiplicative error that sampling noise alone would
    produce if simulation and production had the same true rate."""

    rate: float
    log_sd: float
    n_realised: int
    upper: float  # error below this in ``level`` of worlds with no real difference
    level: float


def funnel_band(rate: float, log_sd: float, n_realised: int, *, level: float = 0.9,
                replications: int = 4000, seed: int = 0) -> FunnelPoint:
    """Monte-Carlo band: draw a forecast log p̂ ~ Normal(log r, s²) with the forecast's own
    sampling sd s (no discrepancy) and k_p ~ Bin(n_realised, r), score the symmetric error of
    p̂ against k_p (continuity rule), and take the ``level`` quantile. Errors above the band are
    ones sampling noise cannot explain."""
    if not 0 < level < 1:
        raise ValueError("level must be in (0, 1)")
    if log_sd < 0:
        raise ValueError("log sd must be non-negative")
    rng = np.random.default_rng(seed)
    r = _clip(rate)
    forecast = np.clip(np.exp(np.log(r) + log_sd * rng.standard_normal(replications)), _EPS, 1 - _EPS)
    kp = rng.binomial(n_realised, r, size=replications)
    edge = (kp == 0) | (kp == n_realised)
    pp = np.where(edge, (kp + 0.5) / (n_realised + 1), kp / n_realised)
    err = np.maximum(forecast / pp, pp / forecast)
    return FunnelPoint(rate=rate, log_sd=log_sd, n_realised=n_realised, upper=float(np.quantile(err, level)),
                       level=level)
