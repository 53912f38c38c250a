"""Rogan–Gladen grader-error correction and its validation-aware interval."""

from __future__ import annotations

import numpy as np
import pytest

from deploysim.estimate.correction import (
    ValidationCounts,
    corrected_rate,
    corrected_rate_known,
    rogan_gladen,
)
from deploysim.estimate.validation import parse_validation_record, pool_validations


def test_rogan_gladen_formula_and_clipping() -> None:
    assert rogan_gladen(0.12, 0.8, 0.95) == pytest.approx((0.12 + 0.95 - 1) / (0.8 + 0.95 - 1))
    assert rogan_gladen(0.3, 1.0, 1.0) == pytest.approx(0.3)  # a perfect grader changes nothing
    assert rogan_gladen(0.01, 0.9, 0.95) == 0.0  # below the false-positive rate: clipped at 0
    assert rogan_gladen(0.01, 0.9, 0.95, clip=False) == pytest.approx((0.01 - 0.05) / 0.85)
    assert rogan_gladen(0.99, 0.9, 0.99) == 1.0
    with pytest.raises(ValueError, match="uninformative"):
        rogan_gladen(0.2, 0.5, 0.5)
    with pytest.raises(ValueError, match="sensitivity"):
        rogan_gladen(0.2, 1.2, 0.5)


@pytest.mark.parametrize(("true_rate", "se", "sp", "n"),
                         [(0.05, 0.9, 0.97, 2_000), (0.2, 0.7, 0.9, 500), (0.01, 0.95, 0.995, 10_000)])
def test_corrected_estimator_is_unbiased(true_rate: float, se: float, sp: float, n: int) -> None:
    rng = np.random.default_rng(11)
    flagged = true_rate * se + (1 - true_rate) * (1 - sp)
    k = rng.binomial(n, flagged, 20_000)
    corrected = np.array([rogan_gladen(x / n, se, sp, clip=False) for x in k.tolist()])
    mc_se = corrected.std(ddof=1) / np.sqrt(corrected.size)
    assert abs(corrected.mean() - true_rate) < 4 * mc_se
    # these rates sit many standard errors above 0, so the clipped (reported) estimator agrees
    clipped = np.array([rogan_gladen(x / n, se, sp) for x in k.tolist()])
    assert abs(clipped.mean() - true_rate) < 4 * mc_se
    # the naive rate is biased by far more than Monte-Carlo error, so this check has teeth
    assert abs((k / n).mean() - true_rate) > 10 * mc_se


def test_interval_carries_validation_uncertainty() -> None:
    rng = np.random.default_rng(3)
    true_rate, se, sp, n, positives, negatives = 0.05, 0.8, 0.97, 5_000, 100, 400
    flagged = true_rate * se + (1 - true_rate) * (1 - sp)
    covered_mc = covered_known = 0
    reps = 600
    for _ in range(reps):
        tp, tn, k = rng.binomial(positives, se), rng.binomial(negatives, sp), rng.binomial(n, flagged)
        validation = ValidationCounts(tp=tp, fp=negatives - tn, tn=tn, fn=positives - tp)
        mc = corrected_rate(k, n, validation, draws=4_000, seed=rng)
        known = corrected_rate_known(k, n, validation.sensitivity, validation.specificity)
        covered_mc += mc.lower <= true_rate <= mc.upper
        covered_known += known.lower <= true_rate <= known.upper
    print(f"\ncorrected-rate 95% interval coverage: with validation uncertainty {covered_mc / reps:.3f}, "
          f"treating se/sp as known {covered_known / reps:.3f}")
    assert covered_mc / reps >= 0.92
    assert covered_known / reps < 0.8  # ignoring the validation error under-covers badly


def test_corrected_rate_is_seeded_and_reports_degenerate_draws() -> None:
    validation = ValidationCounts(tp=80, fp=10, tn=190, fn=20)
    a = corrected_rate(120, 1000, validation, seed=7)
    assert a == corrected_rate(120, 1000, validation, seed=7)
    assert a.rate == pytest.approx(rogan_gladen(0.12, 0.8, 0.95))
    assert a.lower < a.rate < a.upper
    assert a.method == "beta_posterior_mc" and a.degenerate_share == 0.0
    tiny = corrected_rate(30, 100, ValidationCounts(tp=2, fp=1, tn=2, fn=1), seed=1)
    assert 0.05 < tiny.degenerate_share < 0.6


def test_validation_counts_check_and_pool() -> None:
    pooled = ValidationCounts(tp=1, fp=2, tn=3, fn=4) + ValidationCounts(tp=10, fp=20, tn=30, fn=40)
    assert pooled == ValidationCounts(tp=11, fp=22, tn=33, fn=44)
    assert pooled.sensitivity == pytest.approx(11 / 55) and pooled.specificity == pytest.approx(33 / 55)
    with pytest.raises(ValueError, match="human-positive"):
        ValidationCounts(tp=0, fp=1, tn=1, fn=0)
    with pytest.raises(ValueError, match="non-negative"):
        ValidationCounts(tp=-1, fp=1, tn=1, fn=1)


def test_validation_records_parse_counts_rates_and_pool() -> None:
    rec = {"dataset": "d", "category": "hate", "sensitivity": 0.9, "specificity": 0.8,
           "n_positive": 50, "n_negative": 100}
    assert parse_validation_record(rec) == ValidationCounts(tp=45, fp=20, tn=80, fn=5)
    assert parse_validation_record({"sensitivity": 0.9, "specificity": 0.8}) == (0.9, 0.8)
    with pytest.raises(ValueError, match=r"'d' of 'hate': needs tp, fp, tn, fn"):
        parse_validation_record({"dataset": "d", "category": "hate", "accuracy": 0.9})
    notes: list[str] = []
    records = [{"category": "hate", "dataset": "a", "tp": 5, "fp": 1, "tn": 9, "fn": 5},
               {"category": "hate", "dataset": "b", "tp": 5, "fp": 1, "tn": 9, "fn": 0},
               {"category": "sexual", "dataset": "a", "tp": 1, "fp": 1, "tn": 1, "fn": 1}]
    pooled = pool_validations(records, "hate", notes)
    assert pooled is not None and pooled.counts == ValidationCounts(tp=10, fp=2, tn=18, fn=5)
    assert pooled.datasets == ("a", "b") and not notes
    assert pool_validations(records, "violence", notes) is None


def test_clipped_rate_is_biased_at_small_rates_and_the_unclipped_one_is_not() -> None:
    """True rate 0.001, grader se 0.9, sp 0.99 validated on 200 positives and 400 negatives,
    n = 20,000: the false-positive noise dwarfs the rate, so the clipped estimate (the DESIGN.md
    r̃, reported) is biased upwards by more than half; the unclipped one is unbiased."""
    rng = np.random.default_rng(21)
    true_rate, se, sp, n, positives, negatives, reps = 0.001, 0.9, 0.99, 20_000, 200, 400, 2000
    flagged = true_rate * se + (1 - true_rate) * (1 - sp)
    clipped, unclipped = [], []
    for _ in range(reps):
        tp, tn = rng.binomial(positives, se), rng.binomial(negatives, sp)
        validation = ValidationCounts(tp=tp, fp=negatives - tn, tn=tn, fn=positives - tp)
        cr = corrected_rate(int(rng.binomial(n, flagged)), n, validation, draws=1000, seed=rng)
        clipped.append(cr.rate)
        unclipped.append(cr.unclipped)
    mc_se = float(np.std(unclipped, ddof=1) / np.sqrt(reps))
    print(f"\nRogan–Gladen at a true rate of 0.001: clipped mean {np.mean(clipped):.5f} "
          f"({np.mean(clipped) / true_rate - 1:+.0%}), unclipped mean {np.mean(unclipped):.5f} "
          f"({np.mean(unclipped) / true_rate - 1:+.0%}, Monte-Carlo se {mc_se:.5f})")
    assert np.mean(clipped) > 1.5 * true_rate
    assert abs(np.mean(unclipped) - true_rate) < 4 * mc_se
    # clipping is monotone, so the clipped estimate stays median-unbiased
    assert np.median(clipped) == pytest.approx(max(0.0, float(np.median(unclipped))))


def test_known_se_sp_is_marked() -> None:
    known = corrected_rate_known(50, 1000, 0.9, 0.97)
    assert known.se_sp_known and known.method == "known_se_sp"
    assert known.unclipped == pytest.approx(rogan_gladen(0.05, 0.9, 0.97, clip=False))
    counted = corrected_rate(50, 1000, ValidationCounts(tp=90, fp=3, tn=97, fn=10), seed=1)
    assert not counted.se_sp_known
    below = corrected_rate_known(10, 1000, 0.9, 0.97)
    assert below.rate == 0.0 and below.unclipped < 0.0
