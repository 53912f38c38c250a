"""The discrepancy τ of a forecast model: the stated default prior and its estimate from past
(forecast, realised) records."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deploysim.estimate.discrepancy import (
    DEFAULT_PRIOR,
    TAU_GRID,
    DiscrepancyPrior,
    PastForecast,
    estimate_discrepancies,
    estimate_discrepancy,
    prior_discrepancy,
    prior_masses,
)


def synthetic_records(tau: float, count: int, seed: int, model: str = "ratio_transfer") -> list[PastForecast]:
    """Past forecasts whose realised log rate differs from the forecast by sampling noise of
    the forecast (sd s) plus a discrepancy N(0, τ²); realised counts of 60,000 items."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        true_log = math.log(float(np.exp(rng.uniform(math.log(1e-4), math.log(1e-2)))))
        s = float(rng.uniform(0.05, 0.4))
        forecast = true_log + s * rng.standard_normal() + tau * rng.standard_normal()
        k = int(rng.binomial(60_000, math.exp(true_log)))
        out.append(PastForecast(model=model, log_mean=forecast, log_sd=s, k=k, n=60_000, category=f"c{i}"))
    return out


def test_default_prior_matches_the_papers_figures() -> None:
    """Prior predictive of δ ~ N(0, τ²), τ ~ half-normal(1.1): median |δ| = log 1.5 and
    P(|δ| > log 10) ≈ 5.5% (docs/statistics.md states both)."""
    rng = np.random.default_rng(0)
    tau = np.abs(rng.standard_normal(2_000_000)) * DEFAULT_PRIOR.scale
    delta = np.abs(tau * rng.standard_normal(tau.size))
    assert np.median(delta) == pytest.approx(math.log(1.5), abs=0.005)
    assert np.mean(delta > math.log(10)) == pytest.approx(0.055, abs=0.003)
    masses = prior_masses(DEFAULT_PRIOR)
    assert masses.sum() == pytest.approx(1.0) and masses.min() > 0
    assert len(masses) == len(TAU_GRID)


def test_prior_is_stated_and_has_mass_near_zero() -> None:
    d = prior_discrepancy("direct")
    assert d.method == "prior" and d.records == 0 and "half-normal with scale 1.1" in d.description
    assert d.sd_quantile(0.07) < 0.12  # about 7% of the prior below τ = 0.1
    assert d.mean_variance == pytest.approx(1.1**2, rel=0.02)
    t = prior_discrepancy("direct", DiscrepancyPrior(scale=0.5, dof=3))
    assert "half-t(dof=3)" in t.description


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0])
def test_estimate_recovers_tau(tau: float) -> None:
    d = estimate_discrepancy(synthetic_records(tau, 200, seed=int(10 * tau)), "ratio_transfer")
    assert d.method == "grid_posterior" and d.records == 200
    estimate = math.sqrt(d.mean_variance)
    print(f"\ntrue τ {tau}: posterior sqrt(E τ²) = {estimate:.3f}, 5–95%: "
          f"{d.sd_quantile(0.05):.3f}–{d.sd_quantile(0.95):.3f}")
    if tau == 0.0:
        assert estimate < 0.12
    else:
        assert estimate == pytest.approx(tau, rel=0.15)
        assert d.sd_quantile(0.05) < tau < d.sd_quantile(0.95)


def test_more_records_narrow_the_posterior_and_models_are_separate() -> None:
    few = estimate_discrepancy(synthetic_records(0.6, 10, seed=3), "ratio_transfer")
    many = estimate_discrepancy(synthetic_records(0.6, 300, seed=3), "ratio_transfer")
    width = [d.sd_quantile(0.95) - d.sd_quantile(0.05) for d in (few, many)]
    assert width[1] < width[0] / 2
    records = synthetic_records(0.0, 100, seed=4) + synthetic_records(1.0, 100, seed=5, model="direct")
    both = estimate_discrepancies(records, ["ratio_transfer", "direct"])
    assert math.sqrt(both["ratio_transfer"].mean_variance) < 0.15
    assert math.sqrt(both["direct"].mean_variance) > 0.8
    assert estimate_discrepancy(records, "other").method == "prior"


def test_zero_counts_enter_exactly() -> None:
    records = [PastForecast(model="direct", log_mean=math.log(1e-5), log_sd=0.3, k=0, n=60_000)] * 50
    d = estimate_discrepancy(records, "direct")
    assert math.isfinite(d.mean_variance) and math.sqrt(d.mean_variance) < 0.6


def test_bad_records_name_the_record() -> None:
    bad = [PastForecast(model="direct", log_mean=-5.0, log_sd=0.1, k=5, n=3, category="hate", release="r1")]
    with pytest.raises(ValueError, match=r"past forecast 0 \(r1 / hate\)"):
        estimate_discrepancy(bad, "direct")
    with pytest.raises(ValueError, match="scale > 0"):
        DiscrepancyPrior(scale=0.0)
