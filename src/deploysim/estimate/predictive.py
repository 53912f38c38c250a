"""Predictive distributions of a realised count k of n (DESIGN.md "Definitions": forecast
distribution, binomial NLL, coverage).

A forecast is scored against the count k_X of n_X production items, so what it must state is
a distribution for k_X given n_X, not for the rate parameter. Two families:

* **Beta–binomial** — p ~ Beta(a, b), k | p ~ Binomial(n, p). Used for forecasts that are a
  Jeffreys posterior of one arm's counts (previous production, challenging prompts).
* **Log-normal–binomial mixture** — λ = log p ~ Σ_j w_j · Normal(μ, s² + τ_j²) restricted to
  p < 1, k | p ~ Binomial(n, p). μ is the log point forecast, s² the forecast's own sampling
  variance on the log scale, and the atoms (τ_j, w_j) the distribution of the
  simulation-to-production discrepancy sd (:mod:`deploysim.estimate.discrepancy`).

Numerics of the mixture (deterministic, no Monte Carlo):

* P(K = k) per atom by **adaptive Gauss–Hermite quadrature** (as in GLMM software): the
  integrand Binom(k | n, e^λ)·N(λ; μ, v) is log-concave in λ, so it is centred at its mode
  (Newton) and scaled by its curvature before the 32-node rule is applied. Accurate whether
  the binomial or the normal factor is the narrower one, and in the far tails (NLL of a bad
  forecast).
* P(K ≤ k) = P(B > p) with B ~ Beta(k + 1, n − k) independent of p. Per atom, the smoother of
  the two factors is integrated against the narrower one: Gauss–Hermite over λ of the
  binomial cdf when the normal is narrow (√v·√(k+1) < 1), else Gauss–Legendre over the
  quantiles of B of Φ((log B − μ)/√v).
* The mass of the log-normal above p = 1 is removed and the rest renormalised (for the rare
  rates this is meant for it is below 10⁻¹²).

Pure functions and frozen dataclasses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import numpy.typing as npt
from scipy import special, stats
from scipy.optimize import brentq

FloatArray = npt.NDArray[np.float64]

_HERMITE_X, _HERMITE_W = np.polynomial.hermite.hermgauss(32)  # the pmf (adaptive)
_LOG_HERMITE_W = np.log(_HERMITE_W) + _HERMITE_X**2
_CDF_HERMITE_X, _CDF_HERMITE_W = np.polynomial.hermite.hermgauss(20)  # the cdf (smooth integrands)
_LEGENDRE_X, _LEGENDRE_W = np.polynomial.legendre.leggauss(20)
_NEWTON_STEPS = 60


def _check_count(k: int, n: int) -> None:
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")


def count_quantile(cdf_at: CdfFunction, q: float, n: int, guess: int | None = None) -> int:
    """Smallest k in 0 … n with P(K ≤ k) ≥ q: a bracket grown from ``guess``, then bisection."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile level must be in (0, 1), got {q}")
    if cdf_at(0) >= q:
        return 0
    lo, hi = 0, n  # invariant: cdf(lo) < q <= cdf(hi)
    if guess is not None and 0 < guess < n:
        step = max(1, int(2.0 * math.sqrt(guess + 1.0)))
        if cdf_at(guess) >= q:
            hi = guess
            while (below := max(0, hi - step)) > 0 and cdf_at(below) >= q:
                hi, step = below, step * 2
            lo = below
        else:
            lo = guess
            while (above := min(n, lo + step)) < n and cdf_at(above) < q:
                lo, step = above, step * 2
            hi = above
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if cdf_at(mid) >= q:
            hi = mid
        else:
            lo = mid
    return hi


class CdfFunction:
    """k ↦ P(K ≤ k) of one predictive at a fixed n (a small callable for :func:`count_quantile`)."""

    def __init__(self, predictive: BetaBinomialPredictive | LogNormalBinomialPredictive, n: int) -> None:
        self.predictive, self.n = predictive, n

    def __call__(self, k: int) -> float:
        return self.predictive.cdf(k, self.n)


def central_count_interval(predictive: BetaBinomialPredictive | LogNormalBinomialPredictive, n: int,
                           level: float) -> tuple[int, int]:
    """Equal-tailed predictive interval for the count: [F⁻¹((1 − L)/2), F⁻¹((1 + L)/2)].

    P(lo ≤ K ≤ hi) ≥ L, with equality only up to the discreteness of K."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    cdf = CdfFunction(predictive, n)
    lo_q, hi_q = (1.0 - level) / 2.0, (1.0 + level) / 2.0
    return (count_quantile(cdf, lo_q, n, round(n * predictive.rate_quantile(lo_q))),
            count_quantile(cdf, hi_q, n, round(n * predictive.rate_quantile(hi_q))))


@dataclass(frozen=True)
class BetaBinomialPredictive:
    """p ~ Beta(a, b), k | p ~ Binomial(n, p)."""

    a: float
    b: float

    def __post_init__(self) -> None:
        if not (self.a > 0 and self.b > 0):
            raise ValueError(f"Beta parameters must be positive, got a={self.a}, b={self.b}")

    def logpmf(self, k: int, n: int) -> float:
        _check_count(k, n)
        return float(_betabinom_logpmf(np.asarray(k, dtype=np.float64), n, self.a, self.b))

    def cdf(self, k: int, n: int) -> float:
        if k < 0:
            return 0.0
        if k >= n:
            return 1.0
        table = _betabinom_cdf_table(self.a, self.b, n)
        return float(table[k]) if k < table.size else 1.0

    def rate_quantile(self, q: float) -> float:
        return float(stats.beta.ppf(q, self.a, self.b))

    def log_moments(self) -> tuple[float, float]:
        """E log p and Var log p: ψ(a) − ψ(a + b) and ψ₁(a) − ψ₁(a + b)."""
        return (float(special.digamma(self.a) - special.digamma(self.a + self.b)),
                float(special.polygamma(1, self.a) - special.polygamma(1, self.a + self.b)))


@dataclass(frozen=True)
class LogNormalBinomialPredictive:
    """log p ~ Σ_j w_j·Normal(log_mean, log_sd² + tau_j²) restricted to p < 1; k | p ~ Binomial(n, p).

    ``log_sd`` is the forecast's sampling sd on the log scale; ``tau``/``weights`` the atoms of
    the discrepancy sd (one atom ``(0.0,)`` means no discrepancy term)."""

    log_mean: float
    log_sd: float
    tau: tuple[float, ...] = (0.0,)
    weights: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        if not math.isfinite(self.log_mean) or not self.log_sd >= 0.0:
            raise ValueError(f"need a finite log mean and a non-negative sd, got {self.log_mean}, "
                             f"{self.log_sd}")
        if len(self.tau) != len(self.weights) or not self.tau:
            raise ValueError("tau and weights must be non-empty and of the same length")
        if any(t < 0 for t in self.tau) or any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
            raise ValueError("tau atoms and weights must be non-negative with a positive total weight")
        if self.log_sd == 0.0 and min(self.tau) == 0.0:
            raise ValueError("a zero-variance atom: the sampling sd or every discrepancy atom must be "
                             "positive")

    @cached_property
    def variances(self) -> FloatArray:
        return np.asarray(self.log_sd**2 + np.square(self.tau), dtype=np.float64)

    @cached_property
    def _sd(self) -> FloatArray:
        return np.asarray(np.sqrt(self.variances), dtype=np.float64)

    @cached_property
    def _w(self) -> FloatArray:
        w = np.asarray(self.weights, dtype=np.float64)
        return np.asarray(w / w.sum(), dtype=np.float64)

    @cached_property
    def _mass_below_one(self) -> float:
        """P(λ < 0) under the untruncated mixture."""
        return float(self._w @ special.ndtr(-self.log_mean / self._sd))

    def logpmf(self, k: int, n: int) -> float:
        _check_count(k, n)
        per_atom = lognormal_binomial_logpmf(k, n, self.log_mean, self.variances)
        with np.errstate(divide="ignore"):
            return float(_logsumexp(np.log(self._w) + per_atom)) - math.log(self._mass_below_one)

    def cdf(self, k: int, n: int) -> float:
        if k < 0:
            return 0.0
        if k >= n:
            return 1.0
        sd, w = self._sd, self._w
        narrow = sd * math.sqrt(k + 1.0) < 1.0
        total = 0.0
        if np.any(narrow):
            # the normal is the narrow factor: Gauss–Hermite over λ of the binomial cdf
            lam = self.log_mean + math.sqrt(2.0) * sd[narrow, None] * _CDF_HERMITE_X
            values = np.where(lam < 0.0, special.bdtr(k, n, np.exp(np.minimum(lam, 0.0))), 0.0)
            total += float(w[narrow] @ (values @ _CDF_HERMITE_W)) / math.sqrt(math.pi)
        if not np.all(narrow):
            # the binomial is the narrow factor: P(K ≤ k | p) = P(B > p), B ~ Beta(k + 1, n − k),
            # Gauss–Legendre over B's quantiles of P(λ < log B)
            b = special.betaincinv(k + 1.0, float(n - k), (_LEGENDRE_X + 1.0) / 2.0)
            log_b = np.log(np.maximum(b, 1e-300))
            values = special.ndtr((log_b[None, :] - self.log_mean) / sd[~narrow, None])
            total += float(w[~narrow] @ (values @ _LEGENDRE_W)) / 2.0
        return min(1.0, max(0.0, total / self._mass_below_one))

    def rate_quantile(self, q: float) -> float:
        """The q quantile of p (restricted to p < 1)."""
        if not 0.0 < q < 1.0:
            raise ValueError(f"quantile level must be in (0, 1), got {q}")
        sd, w = self._sd, self._w
        target = q * self._mass_below_one

        def excess(lam: float) -> float:
            return float(w @ special.ndtr((lam - self.log_mean) / sd)) - target

        lo = self.log_mean - 40.0 * float(sd.max())
        hi = min(0.0, self.log_mean + 40.0 * float(sd.max()))
        return math.exp(float(brentq(excess, lo, hi, xtol=1e-12)))


def _logsumexp(values: FloatArray, axis: int | None = None) -> FloatArray | float:
    """log Σ exp(values) (numpy; scipy's version is slow for small arrays)."""
    top = np.max(values, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    out = np.log(np.sum(np.exp(values - top), axis=axis, keepdims=True)) + top
    return float(out.item()) if axis is None else np.asarray(np.squeeze(out, axis=axis), dtype=np.float64)


def _betabinom_logpmf(k: FloatArray, n: int, a: float, b: float) -> FloatArray:
    """log C(n, k) + log B(k + a, n − k + b) − log B(a, b)."""
    return np.asarray(special.gammaln(n + 1.0) - special.gammaln(k + 1.0) - special.gammaln(n - k + 1.0)
                      + special.betaln(k + a, n - k + b) - special.betaln(a, b), dtype=np.float64)


@lru_cache(maxsize=256)
def _betabinom_cdf_table(a: float, b: float, n: int) -> FloatArray:
    """P(K ≤ k) for k = 0 … K (cached per (a, b, n)); K covers all but 10⁻¹² of the mass (the
    Beta's 1 − 10⁻¹² quantile times n plus a binomial margin), so P(K ≤ k) = 1 above it."""
    upper = float(special.betaincinv(a, b, 1.0 - 1e-12))
    top = min(n, math.ceil(n * upper + 10.0 * math.sqrt(n * upper + 1.0) + 20.0))
    pmf = np.exp(_betabinom_logpmf(np.arange(top + 1, dtype=np.float64), n, a, b))
    return np.asarray(np.minimum(np.cumsum(pmf), 1.0), dtype=np.float64)


def lognormal_binomial_logpmf(k: npt.ArrayLike, n: npt.ArrayLike, mu: npt.ArrayLike,
                              variance: npt.ArrayLike) -> FloatArray:
    """log ∫ Binom(k | n, e^λ)·N(λ; μ, v) dλ over λ < 0 (not renormalised), elementwise over
    broadcast arrays, by adaptive Gauss–Hermite quadrature around the mode of the integrand."""
    k_a, n_a, mu_a, v_a = (np.asarray(x, dtype=np.float64) for x in np.broadcast_arrays(k, n, mu, variance))
    if np.any(v_a <= 0.0):
        raise ValueError("log-scale variance must be positive")
    rest = n_a - k_a
    # start from the precision-weighted mean of the binomial's log-rate and the prior mean
    lam = np.log((k_a + 0.5) / (n_a + 1.0))
    prec = k_a + 0.5
    lam = np.minimum((lam * prec + mu_a / v_a) / (prec + 1.0 / v_a), -1e-9)
    for _ in range(_NEWTON_STEPS):
        e = np.exp(lam)
        odds = e / -np.expm1(lam)
        grad = k_a - rest * odds - (lam - mu_a) / v_a
        hess = -rest * odds / -np.expm1(lam) - 1.0 / v_a
        step = np.clip(-grad / hess, -2.0, 2.0)
        new = lam + step
        new = np.where(new >= 0.0, lam / 2.0, new)  # the mode lies below 0 when k < n
        if np.all(np.abs(new - lam) < 1e-12):
            lam = new
            break
        lam = new
    e = np.exp(lam)
    curvature = rest * (e / -np.expm1(lam)) / -np.expm1(lam) + 1.0 / v_a
    scale = np.sqrt(2.0 / curvature)
    nodes = lam[..., None] + scale[..., None] * _HERMITE_X
    with np.errstate(divide="ignore", invalid="ignore"):
        v_n = v_a[..., None]
        log_f = (k_a[..., None] * nodes + rest[..., None] * np.log(-np.expm1(np.minimum(nodes, 0.0)))
                 - 0.5 * np.log(2.0 * np.pi * v_n) - (nodes - mu_a[..., None]) ** 2 / (2.0 * v_n))
    log_f = np.where(nodes < 0.0, log_f, -np.inf)
    log_f = np.where(np.isnan(log_f), -np.inf, log_f)
    log_choose = special.gammaln(n_a + 1.0) - special.gammaln(k_a + 1.0) - special.gammaln(rest + 1.0)
    return np.asarray(log_choose + np.log(scale) + _logsumexp(log_f + _LOG_HERMITE_W, axis=-1),
                      dtype=np.float64)
