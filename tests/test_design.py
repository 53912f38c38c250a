"""Rates under the sampling design: per-prefix clusters, design weights, and the refusal of an
unweighted rate from a sample drawn with unequal probabilities."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm

from deploysim.estimate.design import (
    SampleDesign,
    UnweightedSampleError,
    clustered_rate,
    inclusion_weight,
    ratio_estimate,
    require_self_weighting,
    unequal_probability_reasons,
    weighted_rate,
)
from deploysim.estimate.intervals import wilson_bounds, wilson_interval


def test_variance_matches_statsmodels_cluster_robust_wls() -> None:
    """V̂ equals the cluster-robust (CR1) variance of a weighted regression on a constant."""
    rng = np.random.default_rng(0)
    g = 300
    m = rng.integers(1, 5, g)
    k = rng.binomial(m, rng.beta(0.5, 20, g))
    w = rng.uniform(0.5, 3.0, g)
    r, v = ratio_estimate(k, m, w)
    y = np.concatenate([[1.0] * ki + [0.0] * (mi - ki)
                        for ki, mi in zip(k.tolist(), m.tolist(), strict=True)])
    fit = sm.WLS(y, np.ones_like(y), weights=np.repeat(w, m)).fit(
        cov_type="cluster", cov_kwds={"groups": np.repeat(np.arange(g), m)})
    assert r == pytest.approx(float(fit.params[0]), rel=1e-12)
    assert math.sqrt(v) == pytest.approx(float(fit.bse[0]), rel=1e-10)
    # items as their own clusters, weights 1: the variance is r(1 − r)/(n − 1)
    labels = rng.random(500) < 0.1
    r1, v1 = ratio_estimate(labels.astype(float), np.ones(500))
    assert v1 == pytest.approx(r1 * (1 - r1) / 499)


def test_independent_items_give_the_wilson_interval() -> None:
    rate = clustered_rate([(1, 1)] * 37 + [(0, 1)] * 963)
    lo, hi = wilson_interval(37, 1000)
    # n_eff = r(1 − r)/V̂ = n − 1 here, capped at n: the Wilson interval up to that one item
    assert (rate.lower, rate.upper) == pytest.approx((lo, hi), rel=2e-3)
    assert rate.design_effect == pytest.approx(1000 / 999)
    a, b = wilson_bounds(37, 1000)
    assert (float(a), float(b)) == (lo, hi)


def test_clustered_interval_covers_with_strong_within_prefix_correlation() -> None:
    """4 samples per prefix whose labels share the prefix's rate (intra-class correlation about
    0.5): treating the 8,000 samples as independent under-covers; the clustered interval does
    not."""
    rng = np.random.default_rng(7)
    prefixes, samples, mean, icc, reps = 2000, 4, 0.02, 0.5, 600
    a = mean * (1 - icc) / icc
    b = (1 - mean) * (1 - icc) / icc
    naive = clustered_hits = 0
    for _ in range(reps):
        k = rng.binomial(samples, rng.beta(a, b, prefixes))
        lo, hi = wilson_interval(int(k.sum()), prefixes * samples)
        naive += lo <= mean <= hi
        r = clustered_rate([(int(x), samples) for x in k.tolist()])
        clustered_hits += r.lower <= mean <= r.upper
    print(f"\n95% coverage with 4 correlated samples per prefix: independent-items Wilson "
          f"{naive / reps:.3f}, clustered {clustered_hits / reps:.3f}")
    assert naive / reps < 0.85
    assert 0.93 <= clustered_hits / reps <= 0.97


def test_zero_count_uses_the_worst_case_effective_size() -> None:
    r = clustered_rate([(0, 4)] * 500)
    assert r.rate == 0.0 and r.design_effect is None and r.effective_n == pytest.approx(500)
    assert r.upper == pytest.approx(wilson_interval(0, 500)[1])


def test_weighted_rate_undoes_quotas_and_covers() -> None:
    """Two product contexts, 90% / 10% of the traffic with rates 0.2% and 5%, sampled 50/50 by
    quota: k/n is about 2.6% for a deployment rate of 0.68%; the weighted rate is unbiased and
    its stratified interval covers (the unstratified variance would count the difference
    between the strata as noise and over-cover)."""
    rng = np.random.default_rng(3)
    population = {"chat": 900_000, "agent": 100_000}
    rates = {"chat": 0.002, "agent": 0.05}
    truth = sum(population[h] * rates[h] for h in population) / sum(population.values())
    reps, hits, naive_rates, weighted_rates, unstratified = 1000, 0, [], [], 0
    for _ in range(reps):
        labels, weights, strata = [], [], []
        for h, n_h in (("chat", 5000), ("agent", 5000)):
            labels += (rng.random(n_h) < rates[h]).tolist()
            weights += [inclusion_weight(population[h], n_h)] * n_h
            strata += [h] * n_h
        r = weighted_rate(labels, weights, strata=strata)
        hits += r.lower <= truth <= r.upper
        plain = weighted_rate(labels, weights)
        unstratified += plain.lower <= truth <= plain.upper
        naive_rates.append(float(np.mean(labels)))
        weighted_rates.append(r.rate)
    print(f"\nquota sample: true {truth:.4f}, unweighted {np.mean(naive_rates):.4f}, "
          f"weighted {np.mean(weighted_rates):.4f}, weighted 95% coverage {hits / reps:.3f}")
    assert np.mean(naive_rates) > 3 * truth
    assert np.mean(weighted_rates) == pytest.approx(truth, rel=0.03)
    # Monte-Carlo se ≈ 0.007; 3,000 runs gave 0.947 (docs/statistics.md)
    assert 0.92 <= hits / reps <= 0.97
    assert unstratified / reps > hits / reps


def test_stratified_variance_by_hand() -> None:
    k, m, w = [1, 0, 0, 1, 1, 0], [1, 1, 1, 1, 1, 1], [3.0, 3.0, 3.0, 1.0, 1.0, 1.0]
    strata = ["a", "a", "a", "b", "b", "b"]
    r, v = ratio_estimate(k, m, w, strata)
    assert r == pytest.approx((3 + 1 + 1) / 12)
    z = np.array([wi * (ki - r * mi) / 12 for ki, mi, wi in zip(k, m, w, strict=True)])
    expected = sum(3 / 2 * float(np.sum((z[s] - z[s].mean()) ** 2)) for s in (slice(0, 3), slice(3, 6)))
    assert v == pytest.approx(expected)
    with pytest.raises(ValueError, match="at least 2 clusters"):
        ratio_estimate(k, m, w, ["a", "b", "b", "b", "b", "b"])


def test_weighted_clusters_and_bad_input() -> None:
    r = weighted_rate([1, 0, 0, 1, 0, 0], [2.0, 2.0, 1.0, 1.0, 1.0, 1.0],
                      clusters=["a", "a", "b", "b", "c", "c"])
    assert r.method == "weighted_clustered" and r.clusters == 3
    assert r.rate == pytest.approx((2 * 1 + 1) / (2 * 2 + 2 + 2))
    with pytest.raises(ValueError, match="different weights or strata"):
        weighted_rate([1, 0], [1.0, 2.0], clusters=["a", "a"])
    with pytest.raises(ValueError, match="0/1"):
        weighted_rate([2, 0], [1.0, 1.0])
    with pytest.raises(ValueError, match="positive and finite"):
        weighted_rate([1, 0], [1.0, 0.0])
    with pytest.raises(ValueError, match="at least 2 clusters"):
        clustered_rate([(1, 3)])


def test_inclusion_weight_with_a_cap() -> None:
    assert inclusion_weight(10_000, 100) == 100.0
    assert inclusion_weight(10_000, 100, conversation_turns=12, cap=3) == pytest.approx(400.0)
    assert inclusion_weight(10_000, 100, conversation_turns=2, cap=3) == 100.0
    with pytest.raises(ValueError, match="n_h"):
        inclusion_weight(10, 20)


def test_unweighted_quota_sample_is_refused() -> None:
    quota = SampleDesign(stratum_population={"chat": 900_000, "agent": 100_000},
                         stratum_sampled={"chat": 2500, "agent": 2500}, quotas=True)
    reasons = unequal_probability_reasons(quota)
    assert len(reasons) == 1 and "explicit quotas drew stratum 'agent'" in reasons[0]
    with pytest.raises(UnweightedSampleError, match="not self-weighting"):
        require_self_weighting(quota, weights_available=False)
    require_self_weighting(quota, weights_available=True)
    proportional = SampleDesign(stratum_population={"chat": 900_001, "agent": 99_999},
                                stratum_sampled={"chat": 4500, "agent": 500})
    assert unequal_probability_reasons(proportional) == []
    require_self_weighting(proportional, weights_available=False)
    capped = SampleDesign(stratum_population={"": 50_000}, stratum_sampled={"": 1000}, cap_per_conversation=2)
    assert "cap_per_conversation = 2" in unequal_probability_reasons(capped)[0]
    unbound = SampleDesign(stratum_population={"": 50_000}, stratum_sampled={"": 1000},
                           cap_per_conversation=2, capped_conversations=0)
    assert unequal_probability_reasons(unbound) == []
    empty = SampleDesign(stratum_population={"chat": 10, "agent": 10}, stratum_sampled={"chat": 10})
    assert "no sampled prefix" in unequal_probability_reasons(empty)[0]
