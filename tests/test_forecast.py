"""Forecast building from counts per role, locking, and scoring by hand-computed cases.

The synthetic-world study of the forecast methods is in tests/test_forecast_worlds.py."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import special, stats
from statsmodels.stats.proportion import proportion_confint

from deploysim.estimate.discrepancy import estimate_discrepancy
from deploysim.estimate.intervals import jeffreys_interval
from deploysim.estimate.predictive import BetaBinomialPredictive
from deploysim.forecast.locked import ForecastIntegrityError, verify, write_locked
from deploysim.forecast.model import (
    CategoryCounts,
    Counts,
    PairedCounts,
    build_forecast,
    build_forecast_payload,
    category_counts_from_estimates,
    log_rate_variance,
    paired_log_ratio_variance,
)
from deploysim.forecast.scoring import (
    binomial_nll,
    covered,
    direction,
    directional_accuracy,
    funnel_band,
    nll_regret,
    predictive_interval,
    predictive_nll,
    realised_move,
    smoothed_rate,
    symmetric_multiplicative_error,
)
from deploysim.records import Comparison, Estimate
from deploysim.validate.scorecard import past_forecasts, score_forecast


def est(category: str, arm: str, k: int, n: int, grader: str = "g") -> Estimate:
    return Estimate(id=Estimate.make_id(category, arm, grader), category=category, arm=arm,  # type: ignore[arg-type]
                    grader_hash=grader, n=n, k=k, failures=0, rate=k / n if n else 0.0,
                    wilson=(0.0, 1.0), jeffreys=(0.0, 1.0), floor=3 / max(n, 1))


def counts(category: str = "hate", **roles: tuple[int, int]) -> CategoryCounts:
    return CategoryCounts(category=category, grader_hash="g",
                          **{role: Counts(k=k, n=n) for role, (k, n) in roles.items()})


# -- hand-computed scoring cases ---------------------------------------------------------------
def test_smoothed_rate_and_zero_counts() -> None:
    assert smoothed_rate(3, 10) == 0.3
    assert smoothed_rate(0, 99) == pytest.approx(0.5 / 100)
    assert smoothed_rate(10, 10) == pytest.approx(10.5 / 11)
    with pytest.raises(ValueError):
        smoothed_rate(11, 10)


def test_symmetric_error_hand_cases() -> None:
    assert symmetric_multiplicative_error(0.02, 10, 1000) == pytest.approx(2.0)
    assert symmetric_multiplicative_error(0.005, 10, 1000) == pytest.approx(2.0)
    assert symmetric_multiplicative_error(0.01, 10, 1000) == pytest.approx(1.0)
    assert symmetric_multiplicative_error(0.001, 0, 1000) == pytest.approx(0.001 / (0.5 / 1001))


def test_realised_move_needs_the_factor_and_both_counts_to_agree() -> None:
    assert realised_move(300, 10_000, 100, 10_000) == 1
    assert realised_move(100, 10_000, 300, 10_000) == -1
    assert realised_move(140, 10_000, 100, 10_000) == 0  # 1.4x: inside the 1.5x band
    # 2x on the point ratio but 4 events against 2: noise in both counts, not a measurable move
    assert realised_move(4, 1000, 2, 1000) == 0
    assert realised_move(40, 10_000, 20, 10_000) == 1
    # zero counts: the Haldane rule makes the ratio finite; 0 of 1000 vs 30 of 1000 moved down
    assert realised_move(0, 1000, 30, 1000) == -1
    assert realised_move(0, 1000, 0, 1000) == 0
    with pytest.raises(ValueError, match="factor"):
        realised_move(1, 10, 1, 10, factor=1.0)


def test_directional_accuracy_interval_test_and_na() -> None:
    da = directional_accuracy([1, -1, 1, 1, -1, 0, 1, 1, 1, -1, 1, 1, 1],
                              [1, -1, 1, 1, -1, 1, 1, 1, 1, -1, 1, 1, -1])
    assert (da.claim, da.moved, da.correct) == (True, 13, 11)
    lo, hi = proportion_confint(11, 13, alpha=0.05, method="wilson")
    assert da.interval == pytest.approx((lo, hi), rel=1e-9)
    assert da.p_value == pytest.approx(stats.binomtest(11, 13, 0.5, alternative="greater").pvalue, rel=1e-9)
    # categories that did not move do not count; a method without directions is "n/a"
    assert directional_accuracy([1, -1], [0, 0]).accuracy is None
    na = directional_accuracy([None, None, None], [1, -1, 0])
    assert not na.claim and na.moved == 2 and na.accuracy is None and na.p_value is None
    assert direction(0.02, 0.01) == 1 and direction(0.01, 0.02) == -1 and direction(0.01, 0.01) == 0


def test_nll_hand_cases() -> None:
    assert binomial_nll(2, 10, 0.2) == pytest.approx(-math.log(45 * 0.04 * 0.8**8))
    assert nll_regret(2, 10, binomial_nll(2, 10, 0.2)) == pytest.approx(0.0)
    assert nll_regret(2, 10, binomial_nll(2, 10, 0.5)) > 0
    # Beta-binomial with a = b = 1 is uniform over 0..n
    assert predictive_nll(BetaBinomialPredictive(1.0, 1.0), 3, 9) == pytest.approx(math.log(10))
    assert math.isfinite(binomial_nll(0, 1000, 0.0))


def test_funnel_band_shrinks_with_n_and_grows_with_the_forecasts_noise() -> None:
    small = funnel_band(0.01, 0.3, 1000, seed=1)
    large = funnel_band(0.01, 0.03, 100_000, seed=1)
    assert small.upper > large.upper > 1.0
    assert large.upper < 1.2
    assert funnel_band(0.01, 0.5, 100_000, seed=1).upper > funnel_band(0.01, 0.1, 100_000, seed=1).upper


# -- building ------------------------------------------------------------------------------------
def test_ratio_transfer_point_sampling_sd_and_methods() -> None:
    c = counts(candidate_sim=(30, 10_000), control_sim=(10, 10_000), incumbent_prod=(12, 10_000),
               challenge=(50, 200))
    payload = build_forecast_payload([c], run_id="r", created_at="t", level=0.9)
    assert payload.format_version == 2
    cat = payload.category("hate")
    sim = cat.methods["simulation"]
    assert sim.model == "ratio_transfer" and sim.rate == pytest.approx(0.0012 * 0.003 / 0.001)
    assert sim.predictive.family == "lognormal_binomial"
    expected_var = sum(float(special.polygamma(1, k + 0.5) - special.polygamma(1, n + 1.0))
                       for k, n in ((30, 10_000), (10, 10_000), (12, 10_000)))
    assert sim.predictive.log_sd == pytest.approx(math.sqrt(expected_var))  # type: ignore[union-attr]
    assert (sim.direction, sim.reference) == (1, "control_sim")
    assert sim.ratio_vs_y_prod == pytest.approx(3.0)
    assert set(sim.basis) == {"candidate_sim", "control_sim", "incumbent_prod"}
    direct = cat.methods["simulation_direct"]
    assert direct.model == "direct" and direct.rate == pytest.approx(0.003) and direct.direction == 1
    prev = cat.methods["previous_production"]
    assert prev.direction is None and prev.reference is None and prev.rate == 0.0012
    assert prev.predictive.family == "beta_binomial"
    challenge = cat.methods["challenging_prompts"]
    assert challenge.rate == 0.25 and challenge.direction == 1
    # the discrepancy is stated in the file: the default prior, since no past validations were given
    assert payload.discrepancy["ratio_transfer"].method == "prior"
    assert "no past validations" in payload.discrepancy["ratio_transfer"].description
    # the interval is the predictive rate distribution's: wider than sampling noise alone
    wide = payload.predictive(sim)
    assert sim.interval == pytest.approx((wide.rate_quantile(0.05), wide.rate_quantile(0.95)))
    assert sim.interval[1] / sim.rate > math.exp(1.645 * math.sqrt(expected_var))


def test_paired_counts_use_the_paired_variance() -> None:
    paired = PairedCounts(both=20, only_candidate=10, only_control=2, neither=9968)
    assert paired_log_ratio_variance(paired) == pytest.approx((10.5 + 2.5) / ((20.5 + 10.5) * (20.5 + 2.5)))
    base = dict(candidate_sim=(30, 10_000), control_sim=(22, 10_000), incumbent_prod=(25, 10_000))
    independent = build_forecast_payload([counts(**base)], run_id="r", created_at="t")
    with_pairs = build_forecast_payload([counts(**base).model_copy(update={"paired": paired})],
                                        run_id="r", created_at="t")
    sd_ind = independent.category("hate").methods["simulation"].predictive.log_sd  # type: ignore[union-attr]
    sd_pair = with_pairs.category("hate").methods["simulation"].predictive.log_sd  # type: ignore[union-attr]
    assert sd_pair < sd_ind  # shared prefixes: positively correlated arms, a tighter ratio
    expected = math.sqrt(log_rate_variance(25, 10_000) + paired_log_ratio_variance(paired))
    assert sd_pair == pytest.approx(expected)


def test_without_control_the_simulation_is_direct_and_baselines_use_jeffreys() -> None:
    payload = build_forecast_payload([counts(candidate_sim=(0, 500), incumbent_prod=(0, 400))],
                                     run_id="r", created_at="t", level=0.9)
    cat = payload.category("hate")
    assert set(cat.methods) == {"simulation", "previous_production"}
    sim = cat.methods["simulation"]
    assert sim.model == "direct" and sim.rate == pytest.approx(0.5 / 501)
    assert sim.reference == "incumbent_prod"
    prev = cat.methods["previous_production"]
    # the Jeffreys interval of estimate.intervals, with its k = 0 rule: lower bound exactly 0
    assert prev.interval == jeffreys_interval(0, 400, 0.9) and prev.interval[0] == 0.0
    assert (prev.predictive.a, prev.predictive.b) == (0.5, 400.5)  # type: ignore[union-attr]
    only_sim = build_forecast_payload([counts(candidate_sim=(3, 500))], run_id="r", created_at="t")
    assert only_sim.category("hate").methods["simulation"].direction is None  # nothing to compare against


def test_adapter_from_estimates_and_comparisons() -> None:
    ests = [est("hate", "x_on_y", 30, 1000), est("hate", "y_on_y", 10, 1000), est("hate", "y_prod", 12, 1000),
            est("hate", "challenge", 50, 200), est("hate", "x_prod", 5, 100)]
    mcnemar = Comparison(id="c", category="hate", arm_a="x_on_y", arm_b="y_on_y", grader_hash="g", ratio=3.0,
                         ratio_interval=(1.0, 9.0), test="mcnemar", p_value=0.01, significant=True, alpha=0.1,
                         extra={"both": 8, "only_a": 22, "only_b": 2, "neither": 968})
    [c] = category_counts_from_estimates(ests, [mcnemar])
    assert c.candidate_sim == Counts(k=30, n=1000) and c.control_sim == Counts(k=10, n=1000)
    assert c.incumbent_prod == Counts(k=12, n=1000) and c.challenge == Counts(k=50, n=200)
    assert c.paired == PairedCounts(both=8, only_candidate=22, only_control=2, neither=968)
    payload = build_forecast(ests, run_id="r", created_at="t", comparisons=[mcnemar])
    assert payload.category("hate").inputs.paired is not None
    with pytest.raises(ValueError, match="grader hash"):
        build_forecast([est("hate", "x_on_y", 1, 10, "a"), est("hate", "y_prod", 1, 10, "b")],
                       run_id="r", created_at="t")


def test_direction_reference_can_be_forced() -> None:
    ests = [est("hate", "x_on_y", 30, 1000), est("hate", "y_on_y", 40, 1000), est("hate", "y_prod", 10, 1000)]
    auto = build_forecast(ests, run_id="r", created_at="t").category("hate").methods["simulation"]
    prod = build_forecast(ests, run_id="r", created_at="t",
                          direction_reference="y_prod").category("hate").methods["simulation"]
    assert (auto.direction, auto.reference) == (-1, "control_sim")
    assert (prod.direction, prod.reference) == (1, "incumbent_prod")
    with pytest.raises(ValueError, match="no Y→Y"):
        build_forecast(ests[:1] + ests[2:], run_id="r", created_at="t", direction_reference="y_on_y")


def test_estimated_discrepancy_is_stated_and_widens_or_narrows_the_forecast() -> None:
    rng = np.random.default_rng(2)
    from deploysim.estimate.discrepancy import PastForecast

    records = [PastForecast(model="ratio_transfer", log_mean=math.log(2e-3) + 0.05 * rng.standard_normal(),
                            log_sd=0.05, k=int(rng.binomial(60_000, 2e-3)), n=60_000) for _ in range(60)]
    tight = estimate_discrepancy(records, "ratio_transfer")
    c = counts(candidate_sim=(300, 100_000), control_sim=(300, 100_000), incumbent_prod=(200, 100_000))
    prior_payload = build_forecast_payload([c], run_id="r", created_at="t")
    fitted = build_forecast_payload([c], run_id="r", created_at="t", discrepancy={"ratio_transfer": tight})
    spec = fitted.discrepancy["ratio_transfer"]
    assert spec.method == "grid_posterior" and spec.records == 60 and spec.variance < 0.02
    width = [p.category("hate").methods["simulation"].interval for p in (prior_payload, fitted)]
    assert width[1][1] - width[1][0] < (width[0][1] - width[0][0]) / 3
    with pytest.raises(ValueError, match="unknown forecast models"):
        build_forecast_payload([c], run_id="r", created_at="t", discrepancy={"bogus": tight})


# -- locking ---------------------------------------------------------------------------------------
def test_locked_file_refuses_rewrite_and_detects_edits(tmp_path: Path) -> None:
    payload = build_forecast([est("hate", "x_on_y", 3, 100), est("hate", "y_prod", 1, 100)],
                             run_id="r", created_at="2026-11-22T00:00:00+00:00")
    path = tmp_path / "forecast.json"
    digest = write_locked(payload, path)
    loaded, got = verify(path)
    assert got == digest and loaded == payload
    with pytest.raises(FileExistsError, match="never"):
        write_locked(payload, path)
    doc = json.loads(path.read_text())
    doc["payload"]["categories"][0]["methods"]["simulation"]["rate"] = 0.5
    path.chmod(0o644)
    path.write_text(json.dumps(doc))
    with pytest.raises(ForecastIntegrityError, match="mismatch"):
        verify(path)
    doc["payload"]["format_version"] = 1
    path.write_text(json.dumps(doc))
    with pytest.raises(ForecastIntegrityError, match="format version 1"):
        verify(path)


# -- scoring -------------------------------------------------------------------------------------
def test_coverage_is_judged_against_the_predictive_count() -> None:
    """A forecast that is exactly right (same true rate, simulated and realised on 20,000 items
    each) covers the realised count at about the nominal level under the predictive
    distribution, while the old check — realised rate inside the parameter interval — covers
    about P(|Z| ≤ 1.645/√2) = 0.755 (the audit's wrong target)."""
    rng = np.random.default_rng(8)
    rate, n_sim, n_prod, level, reps = 2e-3, 20_000, 20_000, 0.9, 1500
    k_sim = rng.binomial(n_sim, rate, reps)
    k_prod = rng.binomial(n_prod, rate, reps)
    hits_predictive = hits_parameter = 0
    for ks, kp in zip(k_sim.tolist(), k_prod.tolist(), strict=True):
        pred = BetaBinomialPredictive(ks + 0.5, n_sim - ks + 0.5)
        hits_predictive += covered(pred, kp, n_prod, level)
        lo, hi = jeffreys_interval(ks, n_sim, level)
        hits_parameter += lo <= kp / n_prod <= hi
    print(f"\nexact forecast, 90% intervals: predictive coverage {hits_predictive / reps:.3f}, "
          f"parameter-interval check {hits_parameter / reps:.3f}")
    assert 0.88 <= hits_predictive / reps <= 0.94
    assert hits_parameter / reps < 0.8


def test_scorecard_rows_summary_and_na() -> None:
    c = counts(candidate_sim=(60, 20_000), control_sim=(20, 20_000), incumbent_prod=(20, 20_000),
               challenge=(10, 400))
    other = counts("violence", candidate_sim=(10, 20_000), control_sim=(30, 20_000),
                   incumbent_prod=(30, 20_000))
    payload = build_forecast_payload([c, other], run_id="r", created_at="t")
    realised = {"hate": Counts(k=180, n=60_000), "violence": Counts(k=30, n=60_000)}
    card = score_forecast(payload, "h", realised, seed=1)
    assert card.format_version == 2 and card.interval_level == 0.9 and not card.missing
    sim = card.summary["simulation"]
    assert sim.direction_claim and sim.moved == 2 and sim.directional_correct == 2
    assert sim.directional_interval == pytest.approx(proportion_confint(2, 2, 0.05, method="wilson"))
    prev = card.summary["previous_production"]
    assert not prev.direction_claim and math.isnan(prev.directional_accuracy)
    assert prev.directional_interval is None and prev.directional_p_value is None
    for row in card.rows:
        pred = payload.predictive(payload.category(row.category).methods[row.method])
        assert row.nll == pytest.approx(-pred.logpmf(row.k_x, row.n_x))
        assert row.count_interval == predictive_interval(pred, row.n_x, 0.9)
        assert row.covered == (row.count_interval[0] <= row.k_x <= row.count_interval[1])
    hate = {r.method: r for r in card.rows if r.category == "hate"}
    # the simulation (3x up, forecast 3x) covers; previous production (rate unchanged) cannot
    assert hate["simulation"].covered and not hate["previous_production"].covered
    assert hate["previous_production"].direction_correct is None


def test_scorecard_is_the_record_for_the_next_discrepancy_estimate() -> None:
    c = counts(candidate_sim=(60, 20_000), control_sim=(20, 20_000), incumbent_prod=(20, 20_000))
    payload = build_forecast_payload([c], run_id="r", created_at="t")
    card = score_forecast(payload, "h", {"hate": Counts(k=150, n=60_000)})
    records = past_forecasts(card, release="2026-05")
    assert {r.model for r in records} == {"ratio_transfer", "direct"}
    rt = next(r for r in records if r.model == "ratio_transfer")
    spec = payload.category("hate").methods["simulation"].predictive
    assert (rt.log_mean, rt.log_sd, rt.k, rt.n, rt.release) == (spec.log_mean, spec.log_sd,  # type: ignore[union-attr]
                                                                150, 60_000, "2026-05")
    assert estimate_discrepancy(records, "ratio_transfer").records == 1


def test_zero_count_forecast_uses_the_continuity_rule() -> None:
    payload = build_forecast([est("hate", "x_on_y", 0, 100), est("hate", "y_prod", 2, 100)],
                             run_id="r", created_at="t")
    card = score_forecast(payload, "h", {"hate": Counts(k=1, n=100)})
    row = next(r for r in card.rows if r.method == "simulation")
    assert row.forecast_rate == pytest.approx(0.5 / 101)
    assert row.sym_error == pytest.approx(0.01 / (0.5 / 101))
    assert math.isfinite(row.nll) and row.nll < 10
