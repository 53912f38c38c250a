"""Gumbel-tail forecasts (Jones et al. 2025) and the log-normal baseline."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from deploysim.cli.app import app
from deploysim.cli.common import console
from deploysim.estimate.probs_file import read_probabilities
from deploysim.estimate.tail import (
    TiedScoresError,
    bootstrap_worst_query_risk,
    elicitation_scores,
    fit_gumbel_tail,
    fit_lognormal,
    forecast_tail,
    gumbel_tail_share,
    gumbel_worst_query_risk,
    lognormal_tail_share,
    lognormal_worst_query_risk,
    smoothed_probability,
)


def probabilities_on_a_line(slope: float, intercept: float, m: int) -> np.ndarray:
    """Scores placed exactly where log(i/m) = slope·ψ + intercept."""
    psi = (np.log(np.arange(1, m + 1) / m) - intercept) / slope
    return np.exp(-np.exp(-psi))


def test_fit_recovers_an_exact_tail_and_forecast_algebra_holds() -> None:
    p = probabilities_on_a_line(-8.0, -20.0, 500)
    fit = fit_gumbel_tail(p, top=10)
    assert fit.slope == pytest.approx(-8.0) and fit.intercept == pytest.approx(-20.0)
    # at n = m the riskiest query is the largest evaluated probability: n·S(ψ*) = 1
    assert gumbel_worst_query_risk(fit, 500) == pytest.approx(p.max(), rel=1e-9)
    # DESIGN.md's closed form exp(-exp((log n + b)/a))
    assert gumbel_worst_query_risk(fit, 1e6) == pytest.approx(math.exp(-math.exp((math.log(1e6) - 20) / -8)))
    risks = [gumbel_worst_query_risk(fit, n) for n in (1e3, 1e4, 1e5, 1e7)]
    assert risks == sorted(risks) and risks[-1] < 1
    # share above the 3rd-largest probability is 3/m on the line
    assert gumbel_tail_share(fit, float(np.sort(p)[-3])) == pytest.approx(3 / 500, rel=1e-9)


def test_lognormal_fit_recovers_parameters() -> None:
    m = 2000
    logs = stats.norm.ppf((np.arange(1, m + 1) - 0.5) / m, loc=-9.0, scale=1.5)
    fit_all = fit_lognormal(np.exp(logs))
    assert fit_all.mu == pytest.approx(-9.0, abs=1e-6) and fit_all.sigma == pytest.approx(1.5, rel=0.01)
    exact_top = np.exp(-9.0 + 1.5 * stats.norm.isf(np.arange(1, m + 1) / m))[: m - 1]
    fit_top = fit_lognormal(np.concatenate([exact_top, [1e-9]]), top=20)
    assert fit_top.mu == pytest.approx(-9.0) and fit_top.sigma == pytest.approx(1.5)
    expected = math.exp(-9 + 1.5 * stats.norm.isf(1e-4))
    assert lognormal_worst_query_risk(fit_top, 1e4) == pytest.approx(expected)
    assert lognormal_tail_share(fit_top, math.exp(-9.0)) == pytest.approx(0.5)


def test_scores_and_bad_inputs() -> None:
    assert elicitation_scores([math.exp(-1.0)])[0] == pytest.approx(0.0)
    assert elicitation_scores([0.0])[0] == -np.inf
    assert smoothed_probability([0, 10], [10, 10]).tolist() == pytest.approx([0.5 / 11, 10.5 / 11])
    with pytest.raises(ValueError, match="equal 1"):
        elicitation_scores([0.2, 1.0])
    with pytest.raises(ValueError, match=r"item 1 is 1\.5"):
        elicitation_scores([0.2, 1.5])
    with pytest.raises(ValueError, match="positive elicitation probability"):
        fit_gumbel_tail([0.1] * 5 + [0.0] * 50, top=10)
    with pytest.raises(ValueError, match="all equal"):
        fit_gumbel_tail([0.1] * 20, top=10)
    with pytest.raises(ValueError, match="more evaluated queries"):
        fit_gumbel_tail([0.1, 0.2], top=10)
    with pytest.raises(ValueError, match="are 0"):
        fit_lognormal([0.0, 0.1, 0.2])


def worst_query_study(mu: float, beta: float, m: int, reps: int, seed: int) -> tuple[float, float]:
    """Share of forecasts at 100·m queries within one order of magnitude of the realised
    worst query, for elicitation scores ψ ~ Gumbel(mu, beta). The realised maximum of 100·m
    fresh scores is drawn exactly: it is Gumbel(mu + beta·log n, beta)."""
    rng = np.random.default_rng(seed)
    n = 100 * m
    hits_gumbel = hits_lognormal = 0
    for _ in range(reps):
        p = np.exp(-np.exp(-rng.gumbel(mu, beta, m)))
        forecast = forecast_tail(p, n, top=10, interval_replications=0)
        truth = math.exp(-math.exp(-rng.gumbel(mu + beta * math.log(n), beta)))
        hits_gumbel += abs(math.log10(forecast.gumbel_worst_query_risk / truth)) <= 1
        hits_lognormal += abs(math.log10(forecast.lognormal_worst_query_risk / truth)) <= 1
    return hits_gumbel / reps, hits_lognormal / reps


@pytest.mark.parametrize(("mu", "beta"), [(-2.67, 0.1), (-2.2, 0.1), (-2.0, 0.2)])
def test_worst_query_forecasts_at_100x_are_within_a_decade(mu: float, beta: float) -> None:
    share, lognormal_share = worst_query_study(mu, beta, m=1000, reps=1000, seed=17)
    median_truth = math.exp(-math.exp(-stats.gumbel_r.median(mu + beta * math.log(1e5), beta)))
    print(f"\nψ ~ Gumbel({mu}, {beta}), 1,000 → 100,000 queries (median worst risk {median_truth:.2g}): "
          f"within one order of magnitude: Gumbel tail {share:.1%}, log-normal {lognormal_share:.1%}")
    assert share >= 0.8
    assert share >= lognormal_share


def test_behaviour_frequency_extrapolates_below_the_evaluated_resolution() -> None:
    mu, beta, m = -2.67, 0.1, 1000
    true_share = 3e-4  # below 1/m: never observed among the 1,000 evaluated queries on average
    tau = math.exp(-math.exp(-stats.gumbel_r.isf(true_share, mu, beta)))
    rng = np.random.default_rng(23)
    hits = 0
    for _ in range(500):
        p = np.exp(-np.exp(-rng.gumbel(mu, beta, m)))
        forecast = forecast_tail(p, 1e6, top=10, threshold=tau, interval_replications=0)
        frequency = forecast.gumbel_frequency
        assert frequency is not None and frequency.method == "gumbel_tail"
        assert frequency.expected_count == pytest.approx(frequency.share * 1e6)
        hits += abs(math.log10(frequency.share / true_share)) <= 1
    print(f"\nshare of queries with p >= {tau:.3g} (true {true_share}): within a decade {hits / 500:.1%}")
    assert hits / 500 >= 0.8


def test_frequency_below_the_fitted_tail_is_empirical() -> None:
    p = np.linspace(0.001, 0.3, 200)
    forecast = forecast_tail(p, 1e4, top=10, threshold=0.05, interval_replications=0)
    assert forecast.gumbel_frequency is not None and forecast.gumbel_frequency.method == "empirical"
    assert forecast.gumbel_frequency.share == pytest.approx(np.mean(p >= 0.05))


def test_probability_files_and_tail_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "width", 220)  # the table is wide; CliRunner's default is 80 columns
    rng = np.random.default_rng(1)
    p = np.exp(-np.exp(-rng.gumbel(-2.67, 0.1, 400)))
    csv_path = tmp_path / "probs.csv"
    csv_path.write_text("prefix_id,p\n" + "".join(f"q{i},{v!r}\n" for i, v in enumerate(p.tolist())))
    assert read_probabilities(csv_path).values.tolist() == pytest.approx(p.tolist())
    counts = tmp_path / "counts.jsonl"
    counts.write_text("".join(f'{{"successes": {s}, "samples": 50}}\n' for s in rng.binomial(50, 0.05, 300)))
    read = read_probabilities(counts)
    assert read.source == "successes/samples" and read.values.min() > 0 and read.values.max() < 1
    result = CliRunner().invoke(app, ["tail", str(csv_path), "--n", "1e6", "--threshold", "0.01"])
    assert result.exit_code == 0, result.output
    expected = forecast_tail(p, 1e6, 10, 0.01)
    assert f"{expected.gumbel_worst_query_risk:.3g}" in result.output
    assert f"{expected.lognormal_worst_query_risk:.3g}" in result.output
    interval = expected.gumbel_interval
    assert interval is not None
    assert f"90% bootstrap {interval.lower:.3g}–{interval.upper:.3g}" in " ".join(result.output.split())
    assert "not a rate" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text("p\n0.1\nabc\n")
    failed = CliRunner().invoke(app, ["tail", str(bad), "--n", "1000"])
    assert failed.exit_code == 2 and "bad.csv:3" in failed.output and "not a number" in failed.output
    missing = CliRunner().invoke(app, ["tail", str(csv_path), "--n", "1000", "--column", "prob"])
    assert missing.exit_code == 2 and "no column 'prob'" in missing.output


def naive_fit_on_tied_values(p: np.ndarray, top: int, n: float) -> float:
    """The old fit: log(i/m) on the i-th largest score, ties and all (for comparison only)."""
    scores = np.sort(elicitation_scores(p))[::-1][:top]
    slope, intercept = np.polyfit(scores, np.log(np.arange(1, top + 1) / p.size), 1)
    return math.exp(-math.exp((math.log(n) + intercept) / slope))


def test_tied_smoothed_zeros_are_refused_instead_of_over_forecast() -> None:
    """Rare behaviour, 20 samples per query: most queries score (½)/21, tied. The old fit used
    those tied values and over-forecast by about an order of magnitude; the fit now refuses."""
    rng = np.random.default_rng(3)
    mu, beta, m, n = -2.2, 0.1, 1000, 100_000
    naive_errors, refused = [], 0
    for _ in range(200):
        p = np.exp(-np.exp(-rng.gumbel(mu, beta, m)))
        smoothed = smoothed_probability(rng.binomial(20, p), 20)
        truth = math.exp(-math.exp(-rng.gumbel(mu + beta * math.log(n), beta)))
        try:
            fit_gumbel_tail(smoothed, top=10)
        except TiedScoresError:
            refused += 1
        if np.ptp(np.sort(smoothed)[-10:]) > 0:
            naive_errors.append(math.log10(naive_fit_on_tied_values(smoothed, 10, n) / truth))
    print(f"\ntied smoothed zeros: naive fit median error {np.median(naive_errors):+.2f} decades; "
          f"refused {refused}/200")
    assert np.median(naive_errors) > 0.5  # what the refusal prevents
    assert refused == 200


def test_ties_above_the_floor_are_fitted_on_distinct_levels_with_a_warning() -> None:
    p = probabilities_on_a_line(-8.0, -20.0, 500)
    tied = np.concatenate([p, np.sort(p)[-6:-3]])  # three of the top scores appear twice
    fit = fit_gumbel_tail(tied, top=10)
    assert fit.warnings and "ties" in fit.warnings[0] and fit.levels == 8
    # the fitted points are the distinct levels ℓ with #(scores ≥ ℓ) ≤ 10 and the first level
    # beyond, at log(#/m)
    scores = np.sort(elicitation_scores(tied))[::-1]
    levels = np.unique(-scores)
    at_or_above = np.array([np.sum(scores >= -lv) for lv in levels])
    use = at_or_above <= 10
    use[np.argmax(at_or_above > 10)] = True
    slope, intercept = np.polyfit(-levels[use], np.log(at_or_above[use] / tied.size), 1)
    assert (fit.slope, fit.intercept) == pytest.approx((slope, intercept))
    with pytest.raises(TiedScoresError, match="refused"):
        fit_gumbel_tail(tied, top=10, ties="refuse")
    clean = fit_gumbel_tail(p, top=10, ties="refuse")
    assert clean.levels == 10 and not clean.warnings


def test_bootstrap_interval_brackets_the_forecast_and_covers() -> None:
    rng = np.random.default_rng(11)
    mu, beta, m, n = -2.2, 0.1, 1000, 100_000
    hits, reps = 0, 60
    for i in range(reps):
        p = np.exp(-np.exp(-rng.gumbel(mu, beta, m)))
        risk = gumbel_worst_query_risk(fit_gumbel_tail(p, 10), n)
        interval = bootstrap_worst_query_risk(p, n, top=10, replications=200, level=0.9, seed=i)
        assert interval.lower <= risk <= interval.upper * 1.5
        truth = math.exp(-math.exp(-rng.gumbel(mu + beta * math.log(n), beta)))
        hits += interval.lower <= truth <= interval.upper
    print(f"\nGumbel bootstrap 90% interval covered the realised worst query in {hits}/{reps} runs")
    assert hits / reps >= 0.5
    with pytest.raises(ValueError, match="100 bootstrap"):
        bootstrap_worst_query_risk(p, n, replications=10)
