"""A fair synthetic-world study of the forecast (deploysim.forecast.worlds; the full table is
printed by benchmarks/forecast_worlds.py and reported in docs/forecasting.md).

Worlds have realistic rates (10⁻⁴–10⁻²), true changes (up, down, unchanged), and simulated arms
distorted by per-category log-normal factors of sd σ ∈ {0, 0.5, 1}, half shared between X→Y and
Y→Y. The simulation is *not* drawn from the true rates, so these checks can fail: the
pre-discrepancy forecast (Jeffreys posterior of X→Y) fails the coverage check at σ ≥ 0.5 and
loses to previous production on NLL at σ = 1. Run with ``-s`` to see the table.
"""

from __future__ import annotations

import pytest

from deploysim.forecast.worlds import (
    OLD_METHOD,
    PRIOR_METHOD,
    StudyResult,
    WorldSettings,
    format_study,
    run_study,
)

WORLDS = 24
SIGMAS = (0.0, 0.5, 1.0)


@pytest.fixture(scope="module")
def studies() -> dict[float, StudyResult]:
    results = {sigma: run_study(WorldSettings(sigma=sigma), WORLDS, seed=2026,
                                methods=("simulation", PRIOR_METHOD, OLD_METHOD))
               for sigma in SIGMAS}
    print("\n" + format_study(list(results.values())))
    return results


@pytest.mark.parametrize("sigma", SIGMAS)
def test_discrepancy_aware_forecast_covers_at_the_nominal_level(studies: dict[float, StudyResult],
                                                                sigma: float) -> None:
    assert 0.85 <= studies[sigma].tallies["simulation"].coverage <= 0.95


@pytest.mark.parametrize("sigma", SIGMAS)
def test_discrepancy_aware_forecast_against_previous_production(studies: dict[float, StudyResult],
                                                                sigma: float) -> None:
    t = studies[sigma].tallies
    sim, prev = t["simulation"].mean_nll, t["previous_production"].mean_nll
    if sigma <= 0.5:
        assert sim < prev
        assert studies[sigma].wins_vs_previous["simulation"] >= 0.9
    else:
        assert sim <= 1.25 * prev  # never catastrophically worse
    # the default prior alone (no past releases) is not catastrophic either
    assert t[PRIOR_METHOD].mean_nll <= 1.25 * prev


def test_direction_is_informative_and_previous_production_has_none(studies: dict[float, StudyResult]) -> None:
    for sigma, res in studies.items():
        acc = res.tallies["simulation"].accuracy
        assert acc is not None
        assert acc[1] > 0.5, (sigma, acc)  # Wilson lower bound above a coin flip
        assert res.tallies["previous_production"].accuracy is None  # n/a, not 0%
    clean = studies[0.0].tallies["simulation"].accuracy
    assert clean is not None and clean[0] >= 0.9


def test_the_pre_discrepancy_forecast_fails_where_it_should(studies: dict[float, StudyResult]) -> None:
    """The checks have teeth: without a discrepancy term the simulation's own posterior
    under-covers and, at σ = 1, is catastrophically worse than previous production."""
    for sigma in (0.5, 1.0):
        assert studies[sigma].tallies[OLD_METHOD].coverage < 0.7
    one = studies[1.0].tallies
    assert one[OLD_METHOD].mean_nll > 1.25 * one["previous_production"].mean_nll
    assert one[OLD_METHOD].mean_nll > 2 * one["simulation"].mean_nll
