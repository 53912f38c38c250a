"""Agreement statistics: hand-computed values, sklearn-free reference computations on random
tables, standard errors against a multinomial bootstrap, and interval sanity."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploysim.grade.agreement import (
    Confusion,
    agreement,
    binary_table,
    f1,
    f1_se,
    kappa,
    kappa_se,
    kappa_value,
    precision,
    recall,
    roc_auc,
    specificity,
    wilson,
)


def reference_kappa(pairs: list[tuple[int, int]]) -> float:
    """Cohen's kappa from the label pairs themselves (no table algebra): observed agreement
    minus chance agreement of the two raters' own label frequencies."""
    n = len(pairs)
    labels = sorted({a for a, _ in pairs} | {b for _, b in pairs})
    po = sum(1 for a, b in pairs if a == b) / n
    pe = sum((sum(1 for a, _ in pairs if a == lab) / n) * (sum(1 for _, b in pairs if b == lab) / n)
             for lab in labels)
    return (po - pe) / (1 - pe)


def expand(table: list[list[int]]) -> list[tuple[int, int]]:
    return [(i, j) for i, row in enumerate(table) for j, count in enumerate(row) for _ in range(count)]


def test_confusion_from_labels_counts_each_cell() -> None:
    truth = [True, True, False, False, True, False]
    pred = [True, False, True, False, True, False]
    assert Confusion.from_labels(truth, pred) == Confusion(tp=2, fp=1, tn=2, fn=1)
    with pytest.raises(ValueError):
        Confusion.from_labels([True], [True, False])
    with pytest.raises(ValueError):
        Confusion(tp=-1, fp=0, tn=0, fn=0)


def test_precision_recall_f1_on_a_known_table() -> None:
    c = Confusion(tp=8, fp=2, tn=85, fn=5)
    assert precision(c).value == pytest.approx(0.8)
    assert recall(c).value == pytest.approx(8 / 13)
    assert specificity(c).value == pytest.approx(85 / 87)
    assert f1(c).value == pytest.approx(16 / 23)
    # F1 is the harmonic mean of precision and recall
    p, r = 0.8, 8 / 13
    assert f1(c).value == pytest.approx(2 * p * r / (p + r))


def test_wilson_matches_published_value() -> None:
    # 8 of 10 at 95%: the Wilson score interval is 0.490–0.943
    iv = wilson(8, 10)
    assert iv.value == pytest.approx(0.8)
    assert iv.low == pytest.approx(0.4902, abs=1e-4)
    assert iv.high == pytest.approx(0.9433, abs=1e-4)
    zero = wilson(0, 20)
    assert zero.low == 0.0 and 0.13 < zero.high < 0.17  # 0.161
    assert wilson(0, 0).value is None


def test_kappa_hand_computed_2x2() -> None:
    # rows = human, columns = grader: [[tn, fp], [fn, tp]] = [[20, 5], [10, 15]]
    # p_o = 35/50 = 0.7; human marginals .5/.5, grader marginals .6/.4; p_e = .3 + .2 = .5
    c = Confusion(tp=15, fp=5, tn=20, fn=10)
    assert binary_table(c) == [[20, 5], [10, 15]]
    assert kappa(c).value == pytest.approx(0.4)


def test_kappa_hand_computed_3x3() -> None:
    table = [[10, 2, 0], [3, 8, 1], [0, 2, 4]]
    n = 30
    po = 22 / n
    rows, cols = [12 / n, 12 / n, 6 / n], [13 / n, 12 / n, 5 / n]
    pe = sum(r * c for r, c in zip(rows, cols, strict=True))
    assert kappa_value(table) == pytest.approx((po - pe) / (1 - pe))


def test_kappa_perfect_and_chance_and_undefined() -> None:
    assert kappa(Confusion(tp=7, fp=0, tn=9, fn=0)).value == pytest.approx(1.0)
    # the grader ignores the text: independent of the truth -> kappa 0
    assert kappa(Confusion(tp=10, fp=10, tn=10, fn=10)).value == pytest.approx(0.0)
    # both raters say "negative" for everything: chance agreement is 1, kappa undefined
    assert kappa(Confusion(tp=0, fp=0, tn=12, fn=0)).value is None
    assert precision(Confusion(tp=0, fp=0, tn=3, fn=2)).value is None


@pytest.mark.parametrize("k", [2, 3, 4])
def test_kappa_agrees_with_reference_on_random_tables(k: int) -> None:
    rng = np.random.default_rng(100 + k)
    for _ in range(50):
        table = rng.integers(0, 30, size=(k, k)).tolist()
        table[0][0] += 1  # never empty
        pairs = expand(table)
        ref_marginal_one = all(a == pairs[0][0] for a, _ in pairs) and all(b == pairs[0][0] for _, b in pairs)
        if ref_marginal_one:
            continue
        assert kappa_value(table) == pytest.approx(reference_kappa(pairs), abs=1e-12)


def _bootstrap_sd(c: Confusion, stat, draws: int = 4000, seed: int = 7) -> float:
    rng = np.random.default_rng(seed)
    probs = np.array([c.tp, c.fp, c.tn, c.fn], dtype=float) / c.n
    values = []
    for tp, fp, tn, fn in rng.multinomial(c.n, probs, size=draws):
        v = stat(Confusion(tp=int(tp), fp=int(fp), tn=int(tn), fn=int(fn)))
        if v is not None:
            values.append(v)
    return float(np.std(values, ddof=1))


def test_kappa_standard_error_matches_bootstrap() -> None:
    c = Confusion(tp=60, fp=25, tn=380, fn=35)
    analytic = kappa_se(binary_table(c))
    boot = _bootstrap_sd(c, lambda x: kappa_value(binary_table(x)))
    assert analytic is not None
    assert analytic == pytest.approx(boot, rel=0.08)


def test_kappa_standard_error_3x3_matches_bootstrap() -> None:
    table = [[50, 6, 4], [8, 40, 7], [3, 5, 27]]
    flat = np.array(table, dtype=float).ravel()
    rng = np.random.default_rng(3)
    samples = rng.multinomial(int(flat.sum()), flat / flat.sum(), size=4000)
    draws = [kappa_value(d.reshape(3, 3).tolist()) for d in samples]
    assert kappa_se(table) == pytest.approx(float(np.std(draws, ddof=1)), rel=0.08)


def test_f1_standard_error_matches_bootstrap() -> None:
    c = Confusion(tp=60, fp=25, tn=380, fn=35)
    analytic = f1_se(c)
    boot = _bootstrap_sd(c, lambda x: f1(x).value)
    assert analytic is not None
    assert analytic == pytest.approx(boot, rel=0.08)


def test_degenerate_intervals_are_flagged() -> None:
    perfect = agreement(Confusion(tp=5, fp=0, tn=5, fn=0))
    assert perfect.kappa.value == pytest.approx(1.0) and perfect.kappa.degenerate
    assert perfect.f1.degenerate
    assert not agreement(Confusion(tp=5, fp=2, tn=5, fn=1)).kappa.degenerate


counts = st.integers(min_value=0, max_value=400)


@settings(max_examples=200, deadline=None)
@given(tp=counts, fp=counts, tn=counts, fn=counts, confidence=st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_intervals_contain_the_point_and_stay_in_range(tp: int, fp: int, tn: int, fn: int,
                                                       confidence: float) -> None:
    report = agreement(Confusion(tp=tp, fp=fp, tn=tn, fn=fn), confidence)
    for name in ("precision", "recall", "specificity", "f1", "kappa"):
        iv = getattr(report, name)
        if iv.value is None:
            assert iv.low is None and iv.high is None
            continue
        floor = -1.0 if name == "kappa" else 0.0
        assert floor <= iv.low <= iv.value + 1e-12
        assert iv.value - 1e-12 <= iv.high <= 1.0


def test_wider_confidence_gives_wider_intervals() -> None:
    c = Confusion(tp=30, fp=10, tn=100, fn=12)
    narrow, wide = agreement(c, 0.8), agreement(c, 0.99)
    for name in ("precision", "recall", "f1", "kappa"):
        n_iv, w_iv = getattr(narrow, name), getattr(wide, name)
        assert w_iv.high - w_iv.low > n_iv.high - n_iv.low


def test_report_dict_has_counts_and_rogan_gladen_inputs() -> None:
    d = agreement(Confusion(tp=8, fp=2, tn=85, fn=5)).as_dict()
    assert (d["tp"], d["fp"], d["tn"], d["fn"], d["n"]) == (8, 2, 85, 5, 100)
    assert d["sensitivity"] == d["recall"]
    assert d["specificity"]["value"] == pytest.approx(85 / 87)
    assert d["prevalence"] == pytest.approx(0.13)


def _reference_auc(scores: list[float], truth: list[bool]) -> float:
    pos = [s for s, t in zip(scores, truth, strict=True) if t]
    neg = [s for s, t in zip(scores, truth, strict=True) if not t]
    wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def test_roc_auc_matches_pairwise_count_with_ties() -> None:
    rng = np.random.default_rng(11)
    for _ in range(20):
        scores = rng.integers(0, 6, size=40).astype(float).tolist()  # many ties
        truth = (rng.random(40) < 0.4).tolist()
        if any(truth) and not all(truth):
            assert roc_auc(scores, truth) == pytest.approx(_reference_auc(scores, truth))
    assert roc_auc([0.1, 0.9], [False, True]) == 1.0
    assert roc_auc([0.1, 0.2], [True, True]) is None
    assert math.isclose(roc_auc([0.5, 0.5], [True, False]) or 0, 0.5)
