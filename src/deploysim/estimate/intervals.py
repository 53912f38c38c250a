"""Binomial rates and their confidence intervals (DESIGN.md "Definitions": rate, intervals).

The rate of category c in arm A is r̂ = k/n over graded items (items whose generation or
grading failed are counted separately by the caller, never folded into n). Intervals:

* **Wilson score** — the default: good coverage down to small n·p without being as
  conservative as Clopper–Pearson (Brown, Cai & DasGupta 2001).
* **Jeffreys** — the equal-tailed interval of the Beta(k+½, n−k+½) posterior, with the
  Brown–Cai–DasGupta boundary rule: the lower bound is 0 when k = 0 and the upper bound is
  1 when k = n (otherwise the interval would exclude the observed rate).
* **Clopper–Pearson** — the exact (conservative) interval, on request.

Every function has an array form (``*_bounds``, numpy in, numpy out: used by the coverage
study) and a scalar form (``*_interval``) returning ``(lower, upper)``. Pure functions.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import special, stats

IntervalMethod = Literal["wilson", "jeffreys", "clopper_pearson"]
INTERVAL_METHODS: tuple[IntervalMethod, ...] = ("wilson", "jeffreys", "clopper_pearson")

FloatArray = npt.NDArray[np.float64]


def z_value(confidence: float) -> float:
    """Two-sided standard-normal quantile z_{1−(1−confidence)/2} (1.96 at 95%)."""
    _check_confidence(confidence)
    return float(stats.norm.ppf(0.5 + confidence / 2.0))


def rate(k: int, n: int) -> float:
    """r̂ = k/n (DESIGN.md "Rate"); n counts graded items only."""
    _check_counts(np.asarray(k), np.asarray(n))
    return k / n


def wilson_bounds(k: npt.ArrayLike, n: npt.ArrayLike,
                  confidence: float = 0.95) -> tuple[FloatArray, FloatArray]:
    """Wilson score interval: the p with |r̂ − p| ≤ z·√(p(1−p)/n), i.e.

    (k + z²/2)/(n + z²) ± z/(n + z²) · √(k(n−k)/n + z²/4).
    """
    ka, na = _as_counts(k, n)
    return wilson_rate_bounds(ka / na, na, confidence)


def wilson_rate_bounds(rate: npt.ArrayLike, n_eff: npt.ArrayLike,
                       confidence: float = 0.95) -> tuple[FloatArray, FloatArray]:
    """The Wilson score interval written in terms of a rate r and a (possibly non-integer)
    effective sample size n: (r + z²/2n)/(1 + z²/n) ± z/(1 + z²/n)·√(r(1 − r)/n + z²/4n²).
    With r = k/n it is :func:`wilson_bounds`; design-based rates pass their effective n
    (Korn & Graubard 1998). Exactly 0 at r = 0 and 1 at r = 1."""
    r, ne = np.asarray(rate, dtype=np.float64), np.asarray(n_eff, dtype=np.float64)
    if np.any(ne <= 0) or np.any(r < 0) or np.any(r > 1):
        raise ValueError("need 0 <= rate <= 1 and an effective sample size > 0")
    z = z_value(confidence)
    z2n = z * z / ne
    centre = (r + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * np.sqrt(r * (1.0 - r) / ne + z2n / (4.0 * ne))
    # exactly 0 at r = 0 and 1 at r = 1 (the closed form leaves rounding residue there)
    lower = np.where(r == 0, 0.0, np.clip(centre - half, 0.0, 1.0))
    upper = np.where(r == 1, 1.0, np.clip(centre + half, 0.0, 1.0))
    return np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)


def jeffreys_bounds(k: npt.ArrayLike, n: npt.ArrayLike,
                    confidence: float = 0.95) -> tuple[FloatArray, FloatArray]:
    """Jeffreys interval: quantiles (1−c)/2 and (1+c)/2 of Beta(k+½, n−k+½); lower = 0 at
    k = 0 and upper = 1 at k = n."""
    ka, na = _as_counts(k, n)
    return _jeffreys(ka, na, confidence)


def jeffreys_rate_bounds(rate: npt.ArrayLike, n_eff: npt.ArrayLike,
                         confidence: float = 0.95) -> tuple[FloatArray, FloatArray]:
    """The Jeffreys interval at a (possibly non-integer) effective sample size: Beta(r·n + ½,
    (1 − r)·n + ½), as :func:`wilson_rate_bounds` is Wilson's (design-based rates)."""
    r, ne = np.asarray(rate, dtype=np.float64), np.asarray(n_eff, dtype=np.float64)
    if np.any(ne <= 0) or np.any(r < 0) or np.any(r > 1):
        raise ValueError("need 0 <= rate <= 1 and an effective sample size > 0")
    return _jeffreys(r * ne, ne, confidence)


def _jeffreys(ka: FloatArray, na: FloatArray, confidence: float) -> tuple[FloatArray, FloatArray]:
    _check_confidence(confidence)
    tail = (1.0 - confidence) / 2.0
    lower = np.where(ka == 0, 0.0, special.betaincinv(ka + 0.5, na - ka + 0.5, tail))
    upper = np.where(ka == na, 1.0, special.betaincinv(ka + 0.5, na - ka + 0.5, 1.0 - tail))
    return np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)


def clopper_pearson_bounds(k: npt.ArrayLike, n: npt.ArrayLike,
                           confidence: float = 0.95) -> tuple[FloatArray, FloatArray]:
    """Clopper–Pearson: lower = Beta⁻¹((1−c)/2; k, n−k+1), upper = Beta⁻¹((1+c)/2; k+1, n−k),
    with 0 at k = 0 and 1 at k = n. Coverage is at least the nominal level for every p."""
    ka, na = _as_counts(k, n)
    _check_confidence(confidence)
    tail = (1.0 - confidence) / 2.0
    with np.errstate(invalid="ignore"):
        lower = np.where(ka == 0, 0.0, stats.beta.ppf(tail, np.maximum(ka, 1), na - ka + 1))
        upper = np.where(ka == na, 1.0, stats.beta.ppf(1.0 - tail, ka + 1, np.maximum(na - ka, 1)))
    return np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)


def interval_bounds(method: IntervalMethod, k: npt.ArrayLike, n: npt.ArrayLike,
                    confidence: float = 0.95) -> tuple[FloatArray, FloatArray]:
    """Array interval by method name."""
    if method == "wilson":
        return wilson_bounds(k, n, confidence)
    if method == "jeffreys":
        return jeffreys_bounds(k, n, confidence)
    if method == "clopper_pearson":
        return clopper_pearson_bounds(k, n, confidence)
    raise ValueError(f"unknown interval method {method!r}; known: {', '.join(INTERVAL_METHODS)}")


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Scalar Wilson score interval (see :func:`wilson_bounds`)."""
    return _scalar(wilson_bounds(k, n, confidence))


def jeffreys_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Scalar Jeffreys interval (see :func:`jeffreys_bounds`)."""
    return _scalar(jeffreys_bounds(k, n, confidence))


def clopper_pearson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Scalar Clopper–Pearson interval (see :func:`clopper_pearson_bounds`)."""
    return _scalar(clopper_pearson_bounds(k, n, confidence))


def binomial_interval(method: IntervalMethod, k: int, n: int,
                      confidence: float = 0.95) -> tuple[float, float]:
    """Scalar interval by method name."""
    return _scalar(interval_bounds(method, k, n, confidence))


def _scalar(bounds: tuple[FloatArray, FloatArray]) -> tuple[float, float]:
    return float(bounds[0]), float(bounds[1])


def _as_counts(k: npt.ArrayLike, n: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    ka, na = np.asarray(k), np.asarray(n)
    _check_counts(ka, na)
    return ka.astype(np.float64), na.astype(np.float64)


def _check_counts(k: npt.NDArray[np.generic], n: npt.NDArray[np.generic]) -> None:
    kf, nf = np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    if np.any(nf <= 0):
        raise ValueError("n must be a positive count of graded items")
    if np.any(kf < 0) or np.any(kf > nf):
        raise ValueError("k must satisfy 0 <= k <= n")
    if np.any(kf != np.round(kf)) or np.any(nf != np.round(nf)):
        raise ValueError("k and n must be whole numbers of items")


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
