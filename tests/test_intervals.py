"""Rate intervals (Wilson, Jeffreys, Clopper–Pearson) and the measurement floor."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from deploysim.estimate.floor import below_floor, items_for_floor, measurement_floor
from deploysim.estimate.intervals import (
    INTERVAL_METHODS,
    binomial_interval,
    clopper_pearson_interval,
    jeffreys_bounds,
    jeffreys_interval,
    rate,
    wilson_bounds,
    wilson_interval,
    wilson_rate_bounds,
)

counts = st.integers(min_value=1, max_value=200_000).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n)))


def test_wilson_matches_scipy_and_the_defining_quadratic() -> None:
    lo, hi = wilson_interval(5, 100)
    ci = stats.binomtest(5, 100).proportion_ci(confidence_level=0.95, method="wilson")
    assert lo == pytest.approx(ci.low, rel=1e-9)
    assert hi == pytest.approx(ci.high, rel=1e-9)
    # the end points solve |k/n - p| = z*sqrt(p(1-p)/n)
    z = stats.norm.ppf(0.975)
    for p in (lo, hi):
        assert abs(0.05 - p) == pytest.approx(z * math.sqrt(p * (1 - p) / 100), rel=1e-9)


def test_jeffreys_is_the_beta_posterior_with_boundary_rule() -> None:
    lo, hi = jeffreys_interval(7, 1000, 0.9)
    assert lo == pytest.approx(stats.beta.ppf(0.05, 7.5, 993.5), rel=1e-12)
    assert hi == pytest.approx(stats.beta.ppf(0.95, 7.5, 993.5), rel=1e-12)
    assert jeffreys_interval(0, 1000)[0] == 0.0
    assert jeffreys_interval(0, 1000)[1] == pytest.approx(stats.beta.ppf(0.975, 0.5, 1000.5))
    assert jeffreys_interval(50, 50)[1] == 1.0


def test_clopper_pearson_matches_scipy_exact() -> None:
    for k, n in ((0, 20), (3, 20), (20, 20), (17, 123_456)):
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        lo, hi = clopper_pearson_interval(k, n)
        assert lo == pytest.approx(ci.low, abs=1e-12)
        assert hi == pytest.approx(ci.high, rel=1e-9)


def test_array_and_scalar_forms_agree() -> None:
    k = np.array([0, 1, 10, 99, 100])
    lo, hi = wilson_bounds(k, 100, 0.95)
    jl, jh = jeffreys_bounds(k, 100, 0.95)
    for i, ki in enumerate(k.tolist()):
        assert (lo[i], hi[i]) == pytest.approx(wilson_interval(ki, 100))
        assert (jl[i], jh[i]) == pytest.approx(jeffreys_interval(ki, 100))


@settings(max_examples=200, deadline=None)
@given(counts, st.sampled_from(INTERVAL_METHODS), st.floats(min_value=0.5, max_value=0.999))
def test_every_interval_contains_the_observed_rate(kn: tuple[int, int], method: str, conf: float) -> None:
    k, n = kn
    lo, hi = binomial_interval(method, k, n, conf)  # type: ignore[arg-type]
    assert 0.0 <= lo <= k / n <= hi <= 1.0


@settings(max_examples=100, deadline=None)
@given(counts, st.sampled_from(INTERVAL_METHODS))
def test_higher_confidence_gives_a_wider_interval(kn: tuple[int, int], method: str) -> None:
    k, n = kn
    lo90, hi90 = binomial_interval(method, k, n, 0.90)  # type: ignore[arg-type]
    lo99, hi99 = binomial_interval(method, k, n, 0.99)  # type: ignore[arg-type]
    assert lo99 <= lo90 + 1e-15 and hi90 <= hi99 + 1e-15


@pytest.mark.parametrize(("k", "n"), [(0, 0), (-1, 10), (11, 10), (1.5, 10)])
def test_bad_counts_are_refused(k: float, n: int) -> None:
    with pytest.raises(ValueError, match=r"n must|k must|whole"):
        wilson_interval(k, n)  # type: ignore[arg-type]


def test_bad_confidence_and_method_are_refused() -> None:
    with pytest.raises(ValueError, match="confidence"):
        jeffreys_interval(1, 10, 1.0)
    with pytest.raises(ValueError, match="unknown interval method"):
        binomial_interval("wald", 1, 10)  # type: ignore[arg-type]
    assert rate(3, 12) == 0.25


def test_floor_is_where_zero_events_has_probability_alpha() -> None:
    for n in (1, 10, 1000, 200_000):
        floor = measurement_floor(n)
        assert (1 - floor) ** n == pytest.approx(0.05, rel=1e-9)
        assert floor == pytest.approx(clopper_pearson_interval(0, n, 0.90)[1], rel=1e-9)
    assert measurement_floor(1) < 1.0
    for n in (100, 10_000, 1_000_000):  # ≈ -ln(0.05)/n ≈ 3/n
        assert measurement_floor(n) == pytest.approx(-math.log(0.05) / n, rel=0.015)


def test_items_for_floor_is_the_inverse_of_the_floor() -> None:
    n = items_for_floor(1 / 200_000)
    assert measurement_floor(n) <= 1 / 200_000 < measurement_floor(n - 1)
    assert 590_000 < n < 610_000  # the paper's 1-in-200,000 floor needs ~3·200,000 messages
    with pytest.raises(ValueError, match="positive count"):
        measurement_floor(0)
    with pytest.raises(ValueError, match="target rate"):
        items_for_floor(0.0)


@pytest.mark.parametrize(("k", "n"), [(1, 20), (5, 100), (37, 1000), (999, 1000), (17, 123_456)])
def test_intervals_match_statsmodels(k: int, n: int) -> None:
    for ours, method in ((wilson_interval, "wilson"), (jeffreys_interval, "jeffreys"),
                         (clopper_pearson_interval, "beta")):
        lo, hi = proportion_confint(k, n, alpha=0.05, method=method)
        assert ours(k, n) == pytest.approx((lo, hi), rel=1e-7, abs=1e-12), method


def test_wilson_in_rate_form_is_the_count_form() -> None:
    lo, hi = wilson_rate_bounds(np.array([0.0, 0.037, 1.0]), np.array([1000.0, 1000.0, 50.0]))
    assert (lo[1], hi[1]) == pytest.approx(wilson_interval(37, 1000))
    assert lo[0] == 0.0 and hi[2] == 1.0
    with pytest.raises(ValueError, match="effective sample size"):
        wilson_rate_bounds(0.1, 0.0)


def test_floor_with_a_graders_false_positives() -> None:
    """The floor is the smallest true rate that a level-5% test of "rate = 0" detects with
    probability 95%, given the grader's false-positive rate f and sensitivity."""
    for n in (1000, 100_000):
        assert measurement_floor(n, false_positive_rate=0.0) == measurement_floor(n)
        assert measurement_floor(n, 0.95, 0.0, 0.5) == pytest.approx(2 * measurement_floor(n))
    n, f, se = 100_000, 0.01, 0.9
    floor = measurement_floor(n, 0.95, f, se)
    critical = int(stats.binom.ppf(0.95, n, f)) + 1
    assert stats.binom.sf(critical - 1, n, f) <= 0.05  # the test's size
    q = floor * se + (1 - floor) * f
    assert stats.binom.sf(critical - 1, n, q) == pytest.approx(0.95, abs=1e-6)  # its power at the floor
    perfect = measurement_floor(n)
    print(f"\nfloor at n = 100,000: perfect grader {perfect:.3g}, 1% false positives "
          f"{measurement_floor(n, 0.95, 0.01):.3g} ({measurement_floor(n, 0.95, 0.01) / perfect:.0f}x)")
    assert measurement_floor(n, 0.95, 0.01) > 30 * perfect
    floors = [measurement_floor(n, 0.95, x) for x in (1e-6, 1e-4, 1e-3, 1e-2)]
    assert floors == sorted(floors)
    with pytest.raises(ValueError, match="uninformative"):
        measurement_floor(n, 0.95, 0.5, 0.4)


def test_below_floor_is_decided_on_the_corrected_estimate_not_only_at_zero() -> None:
    floor = measurement_floor(1000)  # 0.002996
    assert [below_floor(k, 1000, floor) for k in range(5)] == [True, True, True, False, False]
    fp_floor = measurement_floor(100_000, 0.95, 0.01, 0.9)
    # 1,050 flags of 100,000 with a 1% false-positive grader: corrected 0.00056, below its floor
    assert below_floor(1050, 100_000, fp_floor, 0.01, 0.9)
    assert not below_floor(1300, 100_000, fp_floor, 0.01, 0.9)
