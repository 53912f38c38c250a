"""Predictive distributions of a realised count: quadrature against brute-force integration,
cdf against summed pmf, Beta–binomial against scipy, and calibration of the count interval."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from deploysim.estimate.predictive import (
    BetaBinomialPredictive,
    LogNormalBinomialPredictive,
    central_count_interval,
    lognormal_binomial_logpmf,
)
from deploysim.forecast.scoring import covered, predictive_interval


def brute_force_logpmf(k: int, n: int, mu: float, v: float) -> float:
    """log ∫ Binom(k | n, e^λ) N(λ; μ, v) dλ by the trapezoid rule on 400,001 points."""
    centre = math.log((k + 0.5) / (n + 1))
    lo = min(mu - 12 * math.sqrt(v), centre - 12 / math.sqrt(k + 0.5))
    hi = min(-1e-12, max(mu + 12 * math.sqrt(v), centre + 12 / math.sqrt(k + 0.5)))
    lam = np.linspace(lo, hi, 400_001)
    values = np.exp(stats.binom.logpmf(k, n, np.exp(lam)) + stats.norm.logpdf(lam, mu, math.sqrt(v)))
    return math.log(float(np.trapezoid(values, lam)))


@pytest.mark.parametrize(("k", "n", "rate", "sd"), [
    (0, 60_000, 1e-4, 0.3),      # zero count
    (6, 60_000, 1e-4, 0.5),      # small count
    (600, 60_000, 1e-2, 0.05),   # the binomial and the normal equally narrow
    (600, 60_000, 1e-2, 1.0),    # wide discrepancy
    (2000, 60_000, 1e-2, 0.05),  # far in the tail: NLL of a bad forecast
    (3, 20, 0.5, 2.0),           # tiny n, wide
    (100_000, 1_000_000, 0.05, 0.02),
])
def test_adaptive_quadrature_matches_brute_force(k: int, n: int, rate: float, sd: float) -> None:
    got = float(lognormal_binomial_logpmf(k, n, math.log(rate), sd**2))
    assert got == pytest.approx(brute_force_logpmf(k, n, math.log(rate), sd**2), abs=1e-6)


def test_mixture_cdf_is_the_summed_pmf_and_the_mass_is_one() -> None:
    for k, n, mu, s, tau in [(10, 60_000, math.log(1e-4), 0.4, (0.0, 0.6, 1.2)),
                             (600, 60_000, math.log(1e-2), 0.03, (0.0, 0.1, 0.6)),
                             (0, 1000, math.log(1e-3), 1.0, (0.5,)),
                             (50, 60_000, math.log(1e-3), 0.05, (0.0,))]:
        p = LogNormalBinomialPredictive(mu, s, tau, tuple([1.0] * len(tau)))
        summed = sum(math.exp(p.logpmf(j, n)) for j in range(k + 1))
        assert p.cdf(k, n) == pytest.approx(summed, abs=1e-4)
        assert p.cdf(-1, n) == 0.0 and p.cdf(n, n) == 1.0
    narrow = LogNormalBinomialPredictive(math.log(1e-3), 0.05)
    assert sum(math.exp(narrow.logpmf(j, 60_000)) for j in range(200)) == pytest.approx(1.0, abs=1e-9)


def test_count_interval_is_central() -> None:
    p = LogNormalBinomialPredictive(math.log(3e-3), 0.2, (0.0, 0.5), (0.5, 0.5))
    lo, hi = central_count_interval(p, 60_000, 0.9)
    assert p.cdf(lo - 1, 60_000) < 0.05 <= p.cdf(lo, 60_000)
    assert p.cdf(hi - 1, 60_000) < 0.95 <= p.cdf(hi, 60_000)
    assert lo < 60_000 * 3e-3 < hi
    b = BetaBinomialPredictive(30.5, 9970.5)
    lo, hi = central_count_interval(b, 60_000, 0.9)
    assert lo == int(stats.betabinom.ppf(0.05, 60_000, 30.5, 9970.5))
    assert hi == int(stats.betabinom.ppf(0.95, 60_000, 30.5, 9970.5))


def test_beta_binomial_matches_scipy() -> None:
    b = BetaBinomialPredictive(2.5, 997.5)
    for k in (0, 1, 5, 40):
        expected = float(stats.betabinom.logpmf(k, 5000, 2.5, 997.5))
        assert b.logpmf(k, 5000) == pytest.approx(expected, rel=1e-10)
        assert b.cdf(k, 5000) == pytest.approx(float(stats.betabinom.cdf(k, 5000, 2.5, 997.5)), rel=1e-9)
    assert b.log_moments()[0] == pytest.approx(float(np.mean(np.log(stats.beta.rvs(
        2.5, 997.5, size=400_000, random_state=np.random.default_rng(0))))), abs=0.01)


def test_rate_quantiles_of_the_mixture() -> None:
    p = LogNormalBinomialPredictive(math.log(1e-3), 0.3, (0.4,), (1.0,))
    assert p.rate_quantile(0.5) == pytest.approx(1e-3, rel=1e-9)
    assert p.rate_quantile(0.95) == pytest.approx(1e-3 * math.exp(1.6449 * 0.5), rel=1e-4)


@pytest.mark.parametrize("level", [0.5, 0.9])
def test_predictive_interval_covers_draws_from_the_predictive(level: float) -> None:
    """Counts drawn from the stated predictive land in its central interval at the nominal
    rate (a little above: K is discrete, the interval is conservative); covered() agrees
    with interval membership, so it cannot always return True."""
    rng = np.random.default_rng(5)
    n, mu, s, tau = 60_000, math.log(5e-4), 0.3, (0.2, 0.8)
    pred = LogNormalBinomialPredictive(mu, s, tau, (0.5, 0.5))
    lo, hi = predictive_interval(pred, n, level)
    atom = rng.integers(0, 2, 4000)
    lam = mu + np.sqrt(s**2 + np.asarray(tau)[atom] ** 2) * rng.standard_normal(4000)
    k = rng.binomial(n, np.exp(lam))
    inside = (k >= lo) & (k <= hi)
    assert level - 0.02 <= inside.mean() <= level + 0.05
    for value in np.unique(k)[:: max(1, len(np.unique(k)) // 40)].tolist():
        assert covered(pred, value, n, level) == (lo <= value <= hi)
    assert not covered(pred, 0, n, level) and not covered(pred, 5000, n, level)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="zero-variance"):
        LogNormalBinomialPredictive(-5.0, 0.0, (0.0,), (1.0,))
    with pytest.raises(ValueError, match="same length"):
        LogNormalBinomialPredictive(-5.0, 0.1, (0.1, 0.2), (1.0,))
    with pytest.raises(ValueError, match="positive"):
        BetaBinomialPredictive(0.0, 1.0)
    with pytest.raises(ValueError, match="k <= n"):
        LogNormalBinomialPredictive(-5.0, 0.1).logpmf(11, 10)
