"""Forecast building, locking, scoring by hand-computed cases, and a simulation study."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from deploysim.forecast.locked import ForecastIntegrityError, verify, write_locked
from deploysim.forecast.model import Counts, build_forecast
from deploysim.forecast.scoring import (
    beta_binomial_nll,
    binomial_nll,
    direction,
    directional_accuracy,
    funnel_band,
    nll_regret,
    realised_move,
    smoothed_rate,
    symmetric_multiplicative_error,
)
from deploysim.records import Estimate
from deploysim.validate.scorecard import score_forecast


def est(category: str, arm: str, k: int, n: int, grader: str = "g") -> Estimate:
    return Estimate(id=Estimate.make_id(category, arm, grader), category=category, arm=arm,  # type: ignore[arg-type]
                    grader_hash=grader, n=n, k=k, failures=0, rate=k / n if n else 0.0,
                    wilson=(0.0, 1.0), jeffreys=(0.0, 1.0), floor=3 / max(n, 1))


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
    # realised zero: p = 0.5/1001
    assert symmetric_multiplicative_error(0.001, 0, 1000) == pytest.approx(0.001 / (0.5 / 1001))


def test_directions_and_accuracy() -> None:
    assert direction(0.02, 0.01) == 1 and direction(0.01, 0.02) == -1 and direction(0.01, 0.01) == 0
    assert realised_move(30, 1000, 10, 1000) == 1
    assert realised_move(10, 1000, 14, 1000) == 0  # 1/1.4 is inside the 1.5x band
    assert realised_move(0, 1000, 10, 1000) == -1  # zero count with the continuity rule
    acc, moved = directional_accuracy([1, -1, 1, 0], [1, 1, 0, -1])
    assert moved == 3 and acc == pytest.approx(1 / 3)
    assert math.isnan(directional_accuracy([1], [0])[0])


def test_nll_hand_cases() -> None:
    # Binom(2 | 10, 0.2) = 45 * 0.04 * 0.8^8
    assert binomial_nll(2, 10, 0.2) == pytest.approx(-math.log(45 * 0.04 * 0.8**8))
    assert nll_regret(2, 10, binomial_nll(2, 10, 0.2)) == pytest.approx(0.0)
    assert nll_regret(2, 10, binomial_nll(2, 10, 0.5)) > 0
    # Beta-binomial with a=b=1 is uniform over 0..n
    assert beta_binomial_nll(3, 9, 1.0, 1.0) == pytest.approx(math.log(10))
    # zero realised count is finite
    assert math.isfinite(binomial_nll(0, 1000, 0.0))


def test_funnel_band_shrinks_with_n() -> None:
    small = funnel_band(0.01, 1000, 1000, seed=1)
    large = funnel_band(0.01, 100_000, 100_000, seed=1)
    assert small.upper > large.upper > 1.0
    assert large.upper < 1.2


# -- building and locking ----------------------------------------------------------------------
def test_build_forecast_methods_and_directions() -> None:
    ests = [est("hate", "x_on_y", 30, 1000), est("hate", "y_on_y", 10, 1000), est("hate", "y_prod", 12, 1000),
            est("hate", "challenge", 50, 200)]
    payload = build_forecast(ests, run_id="r", created_at="t", level=0.9)
    cat = payload.category("hate")
    sim = cat.methods["simulation"]
    assert sim.rate == 0.03 and sim.direction == 1 and sim.reference == "y_on_y"
    assert sim.beta == (30.5, 970.5)
    assert sim.interval[0] == pytest.approx(stats.beta.ppf(0.05, 30.5, 970.5))
    assert sim.ratio_vs_y_prod == pytest.approx(0.03 / 0.012)
    assert cat.methods["previous_production"].direction == 0
    assert cat.methods["previous_production"].rate == 0.012
    assert cat.methods["challenging_prompts"].rate == 0.25
    with pytest.raises(ValueError, match="grader hash"):
        build_forecast([est("hate", "x_on_y", 1, 10, "a"), est("hate", "y_prod", 1, 10, "b")],
                       run_id="r", created_at="t")


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


# -- simulation study ----------------------------------------------------------------------------
CONTEXTS = {"general_chat": 0.6, "coding_assistant": 0.25, "customer_support": 0.15}


def synthetic_world(seed: int, *, n_sim: int = 20_000, n_prod: int = 60_000, challenge_bias: bool = True):
    """20 categories with known Y rates, X shifted up (7), down (7) or unchanged (6); per-context
    rate multipliers; the simulation replays Y's context mix; a challenging-prompt set of 400
    prompts whose rates are inflated by a category-specific adversarial factor."""
    rng = np.random.default_rng(seed)
    cats = [f"cat{i:02d}" for i in range(20)]
    shift = np.array([2.0] * 7 + [0.45] * 7 + [1.0] * 6)
    base_y = np.exp(rng.uniform(np.log(0.003), np.log(0.05), size=20))
    ctx_mult = {c: np.exp(rng.normal(0, 0.5, size=20)) for c in CONTEXTS}
    mix = np.array(list(CONTEXTS.values()))

    def draw(rates_by_ctx: dict[str, np.ndarray], n: int) -> np.ndarray:
        per_ctx = rng.multinomial(n, mix)
        return sum(rng.binomial(m, np.clip(rates_by_ctx[c], 0, 1))
                   for c, m in zip(CONTEXTS, per_ctx, strict=True))

    y_rates = {c: base_y * ctx_mult[c] for c in CONTEXTS}
    x_rates = {c: base_y * shift * ctx_mult[c] for c in CONTEXTS}
    bias = np.exp(rng.normal(np.log(8.0), 1.2, size=20)) if challenge_bias else np.ones(20)
    x_challenge = np.clip(np.mean([x_rates[c] for c in CONTEXTS], axis=0) * bias, 0, 0.95)
    k = {"x_on_y": draw(x_rates, n_sim), "y_on_y": draw(y_rates, n_sim), "y_prod": draw(y_rates, n_prod),
         "x_prod": draw(x_rates, n_prod), "challenge": rng.binomial(400, x_challenge)}
    n = {"x_on_y": n_sim, "y_on_y": n_sim, "y_prod": n_prod, "x_prod": n_prod, "challenge": 400}
    ests = [est(c, arm, int(k[arm][i]), n[arm]) for i, c in enumerate(cats)
            for arm in ("x_on_y", "y_on_y", "y_prod", "challenge")]
    realised = {c: Counts(k=int(k["x_prod"][i]), n=n_prod) for i, c in enumerate(cats)}
    return ests, realised


def test_simulation_study_forecast_beats_baselines(capsys: pytest.CaptureFixture[str]) -> None:
    accs: dict[str, list[float]] = {"simulation": [], "previous_production": [], "challenging_prompts": []}
    nll: dict[str, list[float]] = {m: [] for m in accs}
    for seed in range(8):
        ests, realised = synthetic_world(seed)
        payload = build_forecast(ests, run_id=f"world{seed}", created_at="t")
        card = score_forecast(payload, "h", realised, seed=seed)
        for m, s in card.summary.items():
            accs[m].append(s.directional_accuracy)
            nll[m].append(s.total_nll)
    with capsys.disabled():
        print("\nsimulation study, 8 synthetic worlds x 20 categories")
        print(f"{'method':<22}{'dir. accuracy':>15}{'total NLL':>12}")
        for m in accs:
            print(f"{m:<22}{np.mean(accs[m]):>15.3f}{np.mean(nll[m]):>12.1f}")
    assert np.mean(accs["simulation"]) >= 0.9
    assert all(a == 0.0 for a in accs["previous_production"])  # no direction by construction
    assert np.mean(nll["simulation"]) < np.mean(nll["previous_production"])
    # the biased challenging-prompt set does measurably worse than the simulation
    assert np.mean(nll["challenging_prompts"]) > 2 * np.mean(nll["simulation"])
    assert np.mean(accs["challenging_prompts"]) < np.mean(accs["simulation"]) - 0.1


def test_zero_count_forecast_uses_the_continuity_rule() -> None:
    payload = build_forecast([est("hate", "x_on_y", 0, 100), est("hate", "y_prod", 2, 100)],
                             run_id="r", created_at="t")
    card = score_forecast(payload, "h", {"hate": Counts(k=1, n=100)})
    row = next(r for r in card.rows if r.method == "simulation")
    assert row.forecast_rate == 0.0
    assert row.sym_error == pytest.approx(0.01 / (0.5 / 101))
    assert math.isfinite(row.nll_point) and row.nll_point < 10


def test_direction_reference_can_be_forced() -> None:
    ests = [est("hate", "x_on_y", 30, 1000), est("hate", "y_on_y", 40, 1000), est("hate", "y_prod", 10, 1000)]
    auto = build_forecast(ests, run_id="r", created_at="t").category("hate").methods["simulation"]
    prod = build_forecast(ests, run_id="r", created_at="t",
                          direction_reference="y_prod").category("hate").methods["simulation"]
    assert (auto.direction, auto.reference) == (-1, "y_on_y")
    assert (prod.direction, prod.reference) == (1, "y_prod")
    with pytest.raises(ValueError, match="no Y→Y"):
        build_forecast(ests[:1] + ests[2:], run_id="r", created_at="t", direction_reference="y_on_y")
