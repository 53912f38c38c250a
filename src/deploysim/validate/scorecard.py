"""The post-release scorecard: a locked forecast against X's realised production counts.

Pure: takes the forecast payload and realised counts, returns rows and a summary for every
method (the simulation variants and the baselines), with the definitions of DESIGN.md:

* directional accuracy over categories that moved ≥ 1.5x measurably (both counts' noise:
  :func:`deploysim.forecast.scoring.realised_move`), with a Wilson interval and a one-sided
  binomial test against ½; "n/a" for a method that makes no directional claim;
* symmetric multiplicative error of the point forecast (median, max) and the funnel band of
  errors that sampling noise alone would give;
* NLL of the realised count under the forecast's **predictive distribution** and its regret;
* coverage: whether k_X lies in the central predictive interval of the count at the forecast's
  level — the predictive distribution of k_X, not a parameter interval for the rate.

Rows of log-normal forecasts carry their log mean and sampling sd, so a scorecard is also the
record from which later releases estimate the discrepancy (:func:`past_forecasts`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from deploysim.estimate.discrepancy import PastForecast
from deploysim.estimate.predictive import BetaBinomialPredictive
from deploysim.forecast.model import METHODS, Counts, ForecastPayload, LogNormalBinomialSpec
from deploysim.forecast.scoring import (
    MOVE_ALPHA,
    MOVE_FACTOR,
    binomial_nll,
    covered,
    directional_accuracy,
    funnel_band,
    nll_regret,
    predictive_interval,
    predictive_nll,
    realised_move,
    smoothed_rate,
    symmetric_multiplicative_error,
)

SCORECARD_VERSION = 2


class ScoreRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    category: str
    method: str
    model: str  # ratio_transfer | direct | beta_posterior
    forecast_rate: float
    realised_rate: float
    k_x: int
    n_x: int
    forecast_direction: int | None  # None: the method makes no directional claim
    realised_move: int
    direction_correct: bool | None  # None when the category did not move or there is no claim
    sym_error: float
    funnel_upper: float
    outside_funnel: bool
    nll: float  # −log P(k_x | n_x) under the predictive distribution
    nll_point: float  # −log Binom(k_x | n_x, point forecast)
    nll_regret: float
    count_interval: tuple[int, int] | None  # central predictive interval of k_x at the forecast's level
    covered: bool  # k_x inside that interval
    log_mean: float | None = None  # log-normal forecasts: log point forecast ...
    log_sd: float | None = None  # ... and sampling sd (the record for discrepancy estimation)


class MethodSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    method: str
    categories: int
    moved: int
    direction_claim: bool  # False: "n/a" (no directional claim)
    directional_correct: int
    directional_accuracy: float  # NaN when n/a or nothing moved
    directional_interval: tuple[float, float] | None  # Wilson 95%
    directional_p_value: float | None  # one-sided exact binomial test against ½
    median_sym_error: float
    max_sym_error: float
    total_nll: float
    total_nll_regret: float
    coverage: float
    outside_funnel: int


class Scorecard(BaseModel):
    model_config = ConfigDict(frozen=True)

    format_version: int = SCORECARD_VERSION
    forecast_hash: str
    move_factor: float
    move_alpha: float = MOVE_ALPHA
    interval_level: float
    rows: list[ScoreRow]
    summary: dict[str, MethodSummary]
    missing: list[str]  # forecast categories with no realised counts


def score_forecast(payload: ForecastPayload, forecast_hash: str, realised: Mapping[str, Counts], *,
                   move_factor: float = MOVE_FACTOR, move_alpha: float = MOVE_ALPHA,
                   funnel_level: float = 0.9, funnel_replications: int = 4000, intervals: bool = True,
                   seed: int = 0) -> Scorecard:
    """Score every method of every forecast category that has realised counts. ``intervals=False``
    skips computing the count intervals shown in the rows (coverage is decided either way)."""
    rows: list[ScoreRow] = []
    missing: list[str] = []
    level = payload.interval_level
    for cat in payload.categories:
        got = realised.get(cat.category)
        if got is None or got.n == 0:
            missing.append(cat.category)
            continue
        y = cat.y_prod
        move = 0 if y is None else realised_move(got.k, got.n, y.k, y.n, move_factor, move_alpha)
        for method, f in cat.methods.items():
            predictive = payload.predictive(f)
            spec = f.predictive
            if isinstance(spec, LogNormalBinomialSpec):
                log_mean, log_sd, point = spec.log_mean, spec.log_sd, f.rate
            else:  # a Beta forecast from one arm's counts: continuity rule on those counts
                basis = next(iter(f.basis.values()))
                log_mean, point = None, smoothed_rate(basis.k, basis.n)
                log_sd = math.sqrt(BetaBinomialPredictive(spec.a, spec.b).log_moments()[1])
            err = symmetric_multiplicative_error(point, got.k, got.n)
            band = funnel_band(smoothed_rate(got.k, got.n), log_sd, got.n, level=funnel_level,
                               replications=funnel_replications, seed=seed)
            nll = predictive_nll(predictive, got.k, got.n)
            interval = predictive_interval(predictive, got.n, level) if intervals else None
            rows.append(ScoreRow(
                category=cat.category, method=method, model=f.model, forecast_rate=f.rate,
                realised_rate=got.k / got.n, k_x=got.k, n_x=got.n, forecast_direction=f.direction,
                realised_move=move,
                direction_correct=None if move == 0 or f.direction is None else f.direction == move,
                sym_error=err, funnel_upper=band.upper, outside_funnel=err > band.upper, nll=nll,
                nll_point=binomial_nll(got.k, got.n, point), nll_regret=nll_regret(got.k, got.n, nll),
                count_interval=interval, covered=covered(predictive, got.k, got.n, level), log_mean=log_mean,
                log_sd=log_sd if log_mean is not None else None))
    order = [m for m in METHODS if any(r.method == m for r in rows)]
    order += sorted({r.method for r in rows} - set(order))
    summary = {m: summarise(m, [r for r in rows if r.method == m]) for m in order}
    return Scorecard(forecast_hash=forecast_hash, move_factor=move_factor, move_alpha=move_alpha,
                     interval_level=level, rows=rows, summary=summary, missing=missing)


def summarise(method: str, rows: list[ScoreRow]) -> MethodSummary:
    """One method's summary over its rows."""
    da = directional_accuracy([r.forecast_direction for r in rows], [r.realised_move for r in rows])
    errs = [r.sym_error for r in rows]
    return MethodSummary(
        method=method, categories=len(rows), moved=da.moved, direction_claim=da.claim,
        directional_correct=da.correct,
        directional_accuracy=math.nan if da.accuracy is None else da.accuracy,
        directional_interval=da.interval, directional_p_value=da.p_value,
        median_sym_error=statistics.median(errs) if errs else math.nan,
        max_sym_error=max(errs) if errs else math.nan,
        total_nll=sum(r.nll for r in rows), total_nll_regret=sum(r.nll_regret for r in rows),
        coverage=sum(r.covered for r in rows) / len(rows) if rows else math.nan,
        outside_funnel=sum(r.outside_funnel for r in rows))


def past_forecasts(card: Scorecard, release: str = "") -> list[PastForecast]:
    """The (forecast, realised) records of a scored release, one per category and log-normal
    forecast model, for :func:`deploysim.estimate.discrepancy.estimate_discrepancy`."""
    out: list[PastForecast] = []
    seen: set[tuple[str, str]] = set()
    for r in card.rows:
        if r.log_mean is None or r.log_sd is None or (r.category, r.model) in seen:
            continue
        seen.add((r.category, r.model))
        out.append(PastForecast(model=r.model, log_mean=r.log_mean, log_sd=r.log_sd, k=r.k_x, n=r.n_x,
                                category=r.category, release=release))
    return out
