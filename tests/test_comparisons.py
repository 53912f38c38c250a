"""Fisher, McNemar, rate ratios and Benjamini–Hochberg against scipy and hand computation."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.multitest import multipletests

from deploysim.estimate.comparisons import (
    PairedTable,
    benjamini_hochberg,
    fisher_exact_p,
    mcnemar_p,
    paired_rate_ratio,
    rate_ratio,
)
from deploysim.estimate.config import EstimateConfig


def fisher_by_hand(k_a: int, n_a: int, k_b: int, n_b: int) -> float:
    """Sum of hypergeometric probabilities of tables no more likely than the observed one."""
    k, n = k_a + k_b, n_a + n_b

    def prob(x: int) -> float:
        return math.comb(n_a, x) * math.comb(n_b, k - x) / math.comb(n, k)

    observed = prob(k_a)
    support = range(max(0, k - n_b), min(k, n_a) + 1)
    return min(1.0, sum(prob(x) for x in support if prob(x) <= observed * (1 + 1e-7)))


def test_fisher_known_value_lady_tasting_tea() -> None:
    assert fisher_exact_p(3, 4, 1, 4) == pytest.approx(34 / 70, rel=1e-9)


def test_fisher_agrees_with_hand_computation_on_random_tables() -> None:
    rng = random.Random(5)
    for _ in range(300):
        n_a, n_b = rng.randint(1, 60), rng.randint(1, 60)
        k_a, k_b = rng.randint(0, n_a), rng.randint(0, n_b)
        assert fisher_exact_p(k_a, n_a, k_b, n_b) == pytest.approx(fisher_by_hand(k_a, n_a, k_b, n_b),
                                                                   rel=1e-7, abs=1e-12)


def test_mcnemar_exact_matches_scipy_binomtest_and_midp_matches_hand() -> None:
    rng = random.Random(9)
    for _ in range(300):
        b, c = rng.randint(0, 80), rng.randint(0, 80)
        exact = mcnemar_p(b, c, "exact")
        expected = 1.0 if b + c == 0 else stats.binomtest(b, b + c, 0.5).pvalue
        assert exact == pytest.approx(expected, rel=1e-9)
        if b + c:
            m, t = min(b, c), b + c
            tail = sum(math.comb(t, i) for i in range(m + 1)) / 2**t
            assert mcnemar_p(b, c, "midp") == pytest.approx(min(1.0, 2 * tail - math.comb(t, m) / 2**t),
                                                            rel=1e-9)
        assert mcnemar_p(b, c, "midp") <= exact + 1e-12
    assert mcnemar_p(1, 6, "exact") == pytest.approx(16 / 128)
    assert mcnemar_p(1, 6, "midp") == pytest.approx(9 / 128)
    assert mcnemar_p(4, 4) == pytest.approx(1.0) and mcnemar_p(0, 0) == 1.0


def test_kattrue_ratio_by_hand_and_zero_rule() -> None:
    rr = rate_ratio(10, 1000, 5, 1000)
    se = math.sqrt(1 / 10 - 1 / 1000 + 1 / 5 - 1 / 1000)
    z = stats.norm.ppf(0.975)
    assert rr.ratio == pytest.approx(2.0)
    assert rr.interval == pytest.approx((2 * math.exp(-z * se), 2 * math.exp(z * se)))
    assert not rr.zero_corrected
    zero = rate_ratio(0, 1000, 5, 1000)
    assert zero.zero_corrected and zero.ratio == pytest.approx((0.5 / 1001) / (5.5 / 1001))
    assert zero.lower is not None and zero.upper is not None and zero.lower < zero.ratio < zero.upper
    assert rate_ratio(0, 10, 0, 20).ratio is None and rate_ratio(0, 10, 0, 20).interval is None


def test_paired_ratio_by_hand() -> None:
    table = PairedTable(both=3, only_a=7, only_b=2, neither=988)
    rr = paired_rate_ratio(table)
    se = math.sqrt((7 + 2) / (10 * 5))
    z = stats.norm.ppf(0.975)
    assert rr.ratio == pytest.approx(2.0)
    assert rr.interval == pytest.approx((2 * math.exp(-z * se), 2 * math.exp(z * se)))
    identical = paired_rate_ratio(PairedTable(both=5, only_a=0, only_b=0, neither=95))
    assert identical.zero_corrected and identical.lower is not None and identical.lower < 1 < identical.upper


def test_rate_ratio_intervals_cover() -> None:
    rng = np.random.default_rng(4)
    true_ratio, n = 2.0, 4000
    reps = 2000
    k_a = rng.binomial(n, 0.01 * true_ratio, reps)
    k_b = rng.binomial(n, 0.01, reps)
    katz = [rate_ratio(a, n, b, n).interval for a, b in zip(k_a.tolist(), k_b.tolist(), strict=True)]
    share = np.mean([iv is not None and iv[0] <= true_ratio <= iv[1] for iv in katz])
    # paired: correlated labels on the same prefixes (both positive with prob 0.005)
    cells = rng.multinomial(n, [0.005, 0.015, 0.005, 0.975], reps)
    paired = [paired_rate_ratio(PairedTable(*map(int, row))).interval for row in cells]
    paired_share = np.mean([iv is not None and iv[0] <= true_ratio <= iv[1] for iv in paired])
    print(f"\nratio interval coverage at nominal 95%: Katz {share:.3f}, paired {paired_share:.3f}")
    assert 0.93 <= share <= 0.97
    assert 0.93 <= paired_share <= 0.97


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=40))
def test_benjamini_hochberg_matches_scipy(p_values: list[float]) -> None:
    ours = benjamini_hochberg(p_values)
    assert ours == pytest.approx(stats.false_discovery_control(p_values, method="bh").tolist(), abs=1e-12)
    assert all(a >= p - 1e-15 for a, p in zip(ours, p_values, strict=True))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=60), st.randoms())
def test_paired_table_is_invariant_to_pair_order(pairs: list[tuple[bool, bool]], rnd: random.Random) -> None:
    shuffled = pairs[:]
    rnd.shuffle(shuffled)
    table = PairedTable.from_pairs(pairs)
    assert table == PairedTable.from_pairs(shuffled)
    assert table.n == len(pairs)
    assert table.k_a == sum(a for a, _ in pairs) and table.k_b == sum(b for _, b in pairs)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="arm a"):
        fisher_exact_p(3, 2, 1, 4)
    with pytest.raises(ValueError, match="arm b"):
        rate_ratio(1, 10, 1, 0)
    with pytest.raises(ValueError, match="McNemar"):
        mcnemar_p(1, 2, "asymptotic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="p-values"):
        benjamini_hochberg([0.1, 1.5])


def test_benjamini_hochberg_matches_statsmodels() -> None:
    rng = np.random.default_rng(2)
    for _ in range(50):
        p = rng.uniform(0, 1, 19) ** 2
        assert benjamini_hochberg(p.tolist()) == pytest.approx(multipletests(p, method="fdr_bh")[1].tolist())


def test_multiplicity_control_with_nineteen_unchanged_categories() -> None:
    """19 categories, nothing changed, α = 0.1: without adjustment at least one category is
    flagged in most runs; Benjamini–Hochberg (on by default) keeps it near α (under the global
    null the false discovery rate is the family-wise error rate)."""
    assert EstimateConfig().benjamini_hochberg is True
    rng = np.random.default_rng(6)
    categories, n, reps, alpha = 19, 2000, 300, 0.1
    rates = np.exp(rng.uniform(np.log(0.005), np.log(0.05), categories))
    any_fisher = any_fisher_bh = any_mcnemar = any_mcnemar_bh = 0
    for _ in range(reps):
        k_a, k_b = rng.binomial(n, rates), rng.binomial(n, rates)
        fisher = [fisher_exact_p(a, n, b, n) for a, b in zip(k_a.tolist(), k_b.tolist(), strict=True)]
        # paired arms on the same prefixes: discordant pairs split evenly under the null
        discordant = rng.binomial(n, 2 * rates * (1 - rates))
        only_a = rng.binomial(discordant, 0.5)
        mcnemar = [mcnemar_p(a, d - a) for a, d in zip(only_a.tolist(), discordant.tolist(), strict=True)]
        any_fisher += min(fisher) <= alpha
        any_mcnemar += min(mcnemar) <= alpha
        any_fisher_bh += min(benjamini_hochberg(fisher)) <= alpha
        any_mcnemar_bh += min(benjamini_hochberg(mcnemar)) <= alpha
    shares = [x / reps for x in (any_fisher, any_mcnemar, any_fisher_bh, any_mcnemar_bh)]
    print(f"\nP(at least one flag | nothing changed), 19 categories at α = 0.1: Fisher {shares[0]:.2f}, "
          f"McNemar mid-p {shares[1]:.2f}; with Benjamini–Hochberg {shares[2]:.2f}, {shares[3]:.2f}")
    assert shares[0] > 0.5 and shares[1] > 0.6
    assert shares[2] <= alpha + 0.03 and shares[3] <= alpha + 0.03
