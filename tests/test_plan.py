"""Sample-size planning, checked by simulation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from deploysim.cli.app import app
from deploysim.estimate.floor import measurement_floor
from deploysim.estimate.intervals import wilson_bounds
from deploysim.estimate.plan import (
    cohens_h,
    items_for_change,
    items_for_relative_precision,
    plan,
    simulated_power,
)


def test_relative_precision_formula_and_simulated_half_width() -> None:
    z = stats.norm.ppf(0.975)
    n = items_for_relative_precision(0.01, 0.3)
    assert n == math.ceil(z**2 * 0.99 / (0.09 * 0.01))
    k = np.random.default_rng(2).binomial(n, 0.01, 4000)
    lo, hi = wilson_bounds(k, n)
    relative_half_width = np.median((hi - lo) / 2) / 0.01
    assert relative_half_width == pytest.approx(0.3, rel=0.05)


def test_change_formula_by_hand() -> None:
    h = abs(2 * math.asin(math.sqrt(0.015)) - 2 * math.asin(math.sqrt(0.01)))
    assert cohens_h(0.015, 0.01) == pytest.approx(h)
    z = stats.norm.ppf(0.95) + stats.norm.ppf(0.8)
    assert items_for_change(0.01, 1.5, 0.8, 0.1) == math.ceil(2 * (z / h) ** 2)
    # detecting 0.015 -> 0.01 is the same problem as 0.01 -> 0.015
    assert items_for_change(0.015, 1 / 1.5) == items_for_change(0.01, 1.5)


@pytest.mark.parametrize(("rate", "change"), [(0.01, 1.5), (0.002, 1.5), (0.05, 1 / 1.5)])
def test_planned_size_reaches_the_power_in_simulation(rate: float, change: float) -> None:
    n = items_for_change(rate, change, power=0.8, alpha=0.1)
    arcsine = simulated_power(rate * change, rate, n, 0.1, replications=4000, seed=1, test="arcsine")
    fisher = simulated_power(rate * change, rate, n, 0.1, replications=800, seed=1, test="fisher")
    print(f"\nrate {rate} x{change:.3g}: n/arm {n}, power arcsine {arcsine:.3f}, Fisher {fisher:.3f}")
    assert arcsine == pytest.approx(0.8, abs=0.03)
    assert 0.7 <= fisher <= arcsine + 0.03  # Fisher is conservative: a little less power
    # and the test holds its level under the null
    assert simulated_power(rate, rate, n, 0.1, replications=4000, seed=3, test="arcsine") == pytest.approx(
        0.1, abs=0.02)


def test_plan_states_the_floor_of_every_size() -> None:
    result = plan(0.001, rel_precision=0.3, change=1.5, power=0.8, alpha=0.1)
    assert result.floor_precision == measurement_floor(result.n_precision)
    assert result.floor_change == measurement_floor(result.n_change_per_arm)
    assert result.floor_precision < 0.001 and result.floor_change < 0.001
    lo, hi = result.expected_interval
    assert lo < 0.001 < hi


def test_impossible_plans_are_refused() -> None:
    with pytest.raises(ValueError, match="not a rate"):
        items_for_change(0.8, 1.5)
    with pytest.raises(ValueError, match="other than 1"):
        items_for_change(0.1, 1.0)
    with pytest.raises(ValueError, match="rate must be"):
        items_for_relative_precision(0.0, 0.3)


def test_plan_command_prints_sizes_and_floors() -> None:
    result = CliRunner().invoke(app, ["plan", "--rate", "0.001", "--check", "200"])
    assert result.exit_code == 0, result.output
    expected = plan(0.001)
    assert f"{expected.n_precision:,}" in result.output
    assert f"{expected.n_change_per_arm:,}" in result.output
    assert "simulated power" in result.output
    bad = CliRunner().invoke(app, ["plan", "--rate", "1.5"])
    assert bad.exit_code == 2 and "rate must be in (0, 1)" in bad.output


def test_the_cost_plan_counts_judge_calls_in_both_modes() -> None:
    from deploysim.costs import ArmLoad, judge_lines, simulation_lines

    arms = [ArmLoad("x_on_y", "x", True, 20_000, 1.0, 10.0, 400), ArmLoad("y_on_y", "y", True, 20_000, 1.0,
                                                                          10.0, 400),
            ArmLoad("y_prod", "log", False, 20_000)]
    judged = {f"c{i}": 600 for i in range(21)}
    lines = judge_lines(arms, judged, 900.0, 1_200.0, model="j", input_per_mtok=0.5, output_per_mtok=2.0)
    single, multi = lines["per_category"], lines["multi"]
    assert single.requests == 21 * 3 * 20_000 == 1_260_000 and multi.requests == 60_000  # the count
    assert multi.input_tokens < single.input_tokens and multi.output_tokens == single.output_tokens
    sims = simulation_lines(arms, 900.0)
    assert [s.requests for s in sims] == [20_000, 20_000]  # logged arms cost nothing to simulate
    assert sims[0].cost_usd == (20_000 * 300 * 1.0 + 20_000 * 400 * 10.0) / 1e6


def test_plan_command_prints_a_run_files_costs(tmp_path: Path) -> None:
    import orjson
    from typer.testing import CliRunner

    from deploysim.cli.app import app
    from deploysim.demo.corpus import generate_corpus

    generate_corpus(tmp_path / "log.jsonl.gz", n=120, seed=1, window="baseline")
    (tmp_path / "run.toml").write_text("""
[[sources]]
path = "log.jsonl.gz"
[sample]
n = 1000
[models.cand]
provider = "openai"
model = "m"
base_url = "http://127.0.0.1:9/v1"
prices = { input_per_mtok = 1.0, output_per_mtok = 2.0 }
[simulate]
candidate = "cand"
[grade]
judge = "cand"
""")
    out = CliRunner().invoke(app, ["plan", str(tmp_path / "run.toml"), "--json"])
    assert out.exit_code == 0, out.output
    data = orjson.loads(out.stdout)
    assert data["judge"]["per_category"]["requests"] == 2 * 1000 * len(data["judged_categories"])
    assert data["judge"]["multi"]["requests"] == 2 * 1000 and data["prefix_chars"] > 0
