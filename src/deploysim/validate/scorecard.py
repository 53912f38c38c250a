"""The post-release scorecard: a locked forecast against X's realised production counts.

Pure: takes the forecast payload and realised counts, returns rows and a summary for every
method (the simulation and the two baselines), with the definitions of DESIGN.md:
directional accuracy over categories that moved ≥ 1.5x, symmetric multiplicative error
(median, max), binomial NLL (Beta-binomial predictive for Beta forecasts) and NLL regret,
interval coverage, and the funnel band of errors that sampling noise alone would give.

Where a rate from counts enters a ratio (symmetric error, point NLL), the continuity rule of
:mod:`deploysim.forecast.scoring` applies to the forecast's counts as well as the realised
ones; ``forecast_rate`` in the rows stays k/n.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from deploysim.forecast.model import METHODS, Counts, ForecastPayload
from deploysim.forecast.scoring import (
    MOVE_FACTOR,
    beta_binomial_nll,
    binomial_nll,
    covered,
    directional_accuracy,
    funnel_band,
    nll_regret,
    realised_move,
    smoothed_rate,
    symmetric_multiplicative_error,
)


class ScoreRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    category: str
    method: str
    forecast_rate: float
    realised_rate: float
    k_x: int
    n_x: int
    forecast_direction: int
    realised_move: int
    direction_correct: bool | None  # None when the category did not move ≥ 1.5x
    sym_error: float
    funnel_upper: float
    outside_funnel: bool
    nll_point: float
    nll_beta: float
    nll_regret: float
    covered: bool


class MethodSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    method: str
    categories: int
    moved: int
    directional_accuracy: float
    median_sym_error: float
    max_sym_error: float
    total_nll: float
    total_nll_regret: float
    coverage: float
    outside_funnel: int


class Scorecard(BaseModel):
    model_config = ConfigDict(frozen=True)

    forecast_hash: str
    move_factor: float
    rows: list[ScoreRow]
    summary: dict[str, MethodSummary]
    missing: list[str]  # forecast categories with no realised counts


def score_forecast(payload: ForecastPayload, forecast_hash: str, realised: Mapping[str, Counts], *,
                   move_factor: float = MOVE_FACTOR, funnel_level: float = 0.9,
                   seed: int = 0) -> Scorecard:
    """Score every method of every forecast category that has realised counts."""
    rows: list[ScoreRow] = []
    missing: list[str] = []
    for cat in payload.categories:
        got = realised.get(cat.category)
        if got is None or got.n == 0:
            missing.append(cat.category)
            continue
        if cat.y_prod is not None and cat.y_prod.n:
            move = realised_move(got.k, got.n, cat.y_prod.k, cat.y_prod.n, move_factor)
        else:
            move = 0
        for method, f in cat.methods.items():
            # the continuity rule applies to the forecast's own counts too (a 0/n forecast)
            point = smoothed_rate(f.basis.k, f.basis.n) if f.basis.n else f.rate
            err = symmetric_multiplicative_error(point, got.k, got.n)
            band = funnel_band(smoothed_rate(got.k, got.n), f.basis.n, got.n, level=funnel_level, seed=seed)
            nll_b = beta_binomial_nll(got.k, got.n, *f.beta)
            rows.append(ScoreRow(
                category=cat.category, method=method, forecast_rate=f.rate, realised_rate=got.k / got.n,
                k_x=got.k, n_x=got.n, forecast_direction=f.direction, realised_move=move,
                direction_correct=None if move == 0 else f.direction == move, sym_error=err,
                funnel_upper=band.upper, outside_funnel=err > band.upper,
                nll_point=binomial_nll(got.k, got.n, point), nll_beta=nll_b,
                nll_regret=nll_regret(got.k, got.n, nll_b), covered=covered(f.interval, got.k, got.n)))
    summary = {m: _summarise(m, [r for r in rows if r.method == m]) for m in METHODS
               if any(r.method == m for r in rows)}
    return Scorecard(forecast_hash=forecast_hash, move_factor=move_factor, rows=rows, summary=summary,
                     missing=missing)


def _summarise(method: str, rows: list[ScoreRow]) -> MethodSummary:
    acc, moved = directional_accuracy([r.forecast_direction for r in rows], [r.realised_move for r in rows])
    errs = [r.sym_error for r in rows]
    return MethodSummary(
        method=method, categories=len(rows), moved=moved, directional_accuracy=acc,
        median_sym_error=statistics.median(errs) if errs else math.nan,
        max_sym_error=max(errs) if errs else math.nan,
        total_nll=sum(r.nll_beta for r in rows), total_nll_regret=sum(r.nll_regret for r in rows),
        coverage=sum(r.covered for r in rows) / len(rows) if rows else math.nan,
        outside_funnel=sum(r.outside_funnel for r in rows))
