"""Scores of a forecast against realised production rates (DESIGN.md "Definitions").

Pure functions, no I/O. Notation: a forecast for one category is a rate p̂ (and optionally a
Beta(a, b) distribution and an interval); the realised outcome is k_X events among n_X graded
production items of the released model X, and the previous production rate is k_Y / n_Y.

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

#: a realised change counts as a move when r_X / r_Y >= MOVE or <= 1 / MOVE
MOVE_FACTOR = 1.5
_EPS = 1e-12


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


def realised_move(k_x: int, n_x: int, k_y: int, n_y: int, factor: float = MOVE_FACTOR) -> int:
    """+1 / −1 when the realised rate moved by at least ``factor`` up / down, else 0."""
    ratio = smoothed_rate(k_x, n_x) / smoothed_rate(k_y, n_y)
    if ratio >= factor:
        return 1
    if ratio <= 1 / factor:
        return -1
    return 0


def directional_accuracy(forecast_directions: Sequence[int],
                         realised_moves: Sequence[int]) -> tuple[float, int]:
    """Share of moved categories (realised move ≠ 0) whose forecast direction has the same sign.

    Returns (accuracy, number of moved categories); accuracy is NaN when nothing moved. A
    forecast of "no change" (0) on a moved category counts as wrong — which is why the
    previous-production baseline scores 0 on this measure by construction.
    """
    if len(forecast_directions) != len(realised_moves):
        raise ValueError("forecast and realised sequences differ in length")
    moved = [(f, r) for f, r in zip(forecast_directions, realised_moves, strict=True) if r != 0]
    if not moved:
        return math.nan, 0
    return sum(1 for f, r in moved if f == r) / len(moved), len(moved)


def symmetric_multiplicative_error(forecast_rate: float, k_x: int, n_x: int) -> float:
    """max(p̂/p, p/p̂) with p the realised rate under the continuity rule; 1 is perfect."""
    p = smoothed_rate(k_x, n_x)
    q = _clip(forecast_rate)
    return max(q / p, p / q)


def binomial_nll(k: int, n: int, p: float) -> float:
    """−log Binom(k | n, p)."""
    return float(-stats.binom.logpmf(k, n, _clip(p)))


def beta_binomial_nll(k: int, n: int, a: float, b: float) -> float:
    """−log of the Beta-binomial predictive: the forecast's own uncertainty widens the
    distribution of the realised count."""
    if a <= 0 or b <= 0:
        raise ValueError("Beta parameters must be positive")
    return float(-stats.betabinom.logpmf(k, n, a, b))


def nll_regret(k: int, n: int, nll: float) -> float:
    """NLL(forecast) − NLL(k/n): the excess over the oracle that knew the realised rate."""
    return nll - binomial_nll(k, n, k / n)


def covered(interval: tuple[float, float], k_x: int, n_x: int) -> bool:
    """Whether the realised rate k/n lies in the forecast interval."""
    lo, hi = interval
    return lo <= k_x / n_x <= hi


@dataclass(frozen=True)
class FunnelPoint:
    """The 90% band of the symmetric multiplicative error that sampling noise alone would
    produce if simulation and production had the same true rate."""

    rate: float
    n_forecast: int
    n_realised: int
    upper: float  # error below this in ``level`` of worlds with no real difference
    level: float


def funnel_band(rate: float, n_forecast: int, n_realised: int, *, level: float = 0.9,
                replications: int = 4000, seed: int = 0) -> FunnelPoint:
    """Monte-Carlo band: draw k_s ~ Bin(n_forecast, r) and k_p ~ Bin(n_realised, r), score
    the symmetric error of (k_s/n_s, with the continuity rule) against k_p, and take the
    ``level`` quantile. Points above the band are errors noise cannot explain."""
    if not 0 < level < 1:
        raise ValueError("level must be in (0, 1)")
    rng = np.random.default_rng(seed)
    r = _clip(rate)
    ks = rng.binomial(n_forecast, r, size=replications)
    kp = rng.binomial(n_realised, r, size=replications)

    def smooth(k: np.ndarray, n: int) -> np.ndarray:
        edge = (k == 0) | (k == n)
        return np.where(edge, (k + 0.5) / (n + 1), k / n)

    ps, pp = smooth(ks, n_forecast), smooth(kp, n_realised)
    err = np.maximum(ps / pp, pp / ps)
    return FunnelPoint(rate=rate, n_forecast=n_forecast, n_realised=n_realised,
                       upper=float(np.quantile(err, level)), level=level)
