"""Synthetic worlds for a fair test of the forecast methods (tests/test_forecast_worlds.py and
benchmarks/forecast_worlds.py; figures in docs/forecasting.md).

A world is one release: Y is deployed, X is the candidate. Per category (DESIGN.md notation):

* Y's true production rate p_Y is log-uniform on ``rate_range`` (10⁻⁴–10⁻² by default);
* X's true rate is p_X = p_Y·g with a true change g: up (log-uniform 1.5–4x), down (1/4–1/1.5)
  or unchanged (g = 1), in the shares ``change_shares``;
* the simulation is *not* production: each simulated arm's rate is distorted by a per-category
  log-normal factor, r_{X→Y} = p_X·f_X and r_{Y→Y} = p_Y·f_Y with
  log f_X = σ(√ρ·z + √(1−ρ)·u), log f_Y = σ(√ρ·z + √(1−ρ)·v), z, u, v ~ N(0, 1) — a shared part
  (correlation ρ, ``shared``) that ratio transfer cancels and an arm-specific part it does not;
* counts: X→Y, Y→Y and Y production (the sampled prefixes' original responses) on ``n_sim``
  prefixes; X production on ``n_prod`` items; a challenging-prompt set of ``n_challenge``
  prompts whose rates are X's inflated by an adversarial factor exp(N(log 8, 1.2²)) (capped
  at 0.95).

The forecast is built from those counts with the real builder and scored with the real
scorecard. The discrepancy τ of each model is estimated from ``past_releases`` earlier,
independently drawn releases of the same kind (their forecasts' log means and sampling sds
against their realised counts), as a user does from earlier ``deploysim validate`` results.

Methods in the study (the product's methods plus diagnostics that exist only here):

* ``simulation`` (ratio transfer, τ from past releases), ``simulation_direct`` (X→Y, τ from
  past releases), ``previous_production``, ``challenging_prompts`` — as the product builds them;
* ``simulation (prior τ)`` — ratio transfer with the default prior, no past releases;
* ``X→Y posterior (old)`` — the pre-discrepancy forecast: Jeffreys Beta posterior of X→Y;
* ``previous production (widened)`` — r_X = r_Y with a discrepancy τ estimated from past
  releases' realised changes: tells whether the simulation wins by information or only by
  stating a wider distribution.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from deploysim.estimate.discrepancy import Discrepancy, PastForecast, estimate_discrepancy
from deploysim.estimate.intervals import wilson_interval
from deploysim.forecast.model import (
    MODELS,
    CategoryCounts,
    Counts,
    DiscrepancySpec,
    ForecastPayload,
    LogNormalBinomialSpec,
    beta_rate_forecast,
    build_forecast_payload,
    log_rate_variance,
    lognormal_rate_forecast,
)
from deploysim.forecast.scoring import smoothed_rate
from deploysim.validate.scorecard import Scorecard, score_forecast

PRIOR_METHOD = "simulation (prior τ)"
OLD_METHOD = "X→Y posterior (old)"
WIDENED_METHOD = "previous production (widened)"
STUDY_METHODS: tuple[str, ...] = ("simulation", "simulation_direct", PRIOR_METHOD, OLD_METHOD,
                                  "previous_production", WIDENED_METHOD, "challenging_prompts")


@dataclass(frozen=True)
class WorldSettings:
    categories: int = 20
    rate_range: tuple[float, float] = (1e-4, 1e-2)
    n_sim: int = 20_000
    n_prod: int = 60_000
    n_challenge: int = 400
    sigma: float = 0.5
    shared: float = 0.5
    change_shares: tuple[float, float, float] = (0.35, 0.35, 0.3)  # up, down, unchanged
    past_releases: int = 2
    level: float = 0.9


@dataclass(frozen=True)
class Release:
    """One synthetic release: the counts per role and X's realised production counts."""

    inputs: list[CategoryCounts]
    realised: dict[str, Counts]


def draw_release(rng: np.random.Generator, s: WorldSettings, tag: str = "") -> Release:
    """One release of a world (see the module docstring)."""
    c = s.categories
    lo, hi = s.rate_range
    p_y = np.exp(rng.uniform(math.log(lo), math.log(hi), c))
    kind = rng.choice(3, size=c, p=np.asarray(s.change_shares) / sum(s.change_shares))
    up = np.exp(rng.uniform(math.log(1.5), math.log(4.0), c))
    down = 1.0 / np.exp(rng.uniform(math.log(1.5), math.log(4.0), c))
    change = np.where(kind == 0, up, np.where(kind == 1, down, 1.0))
    p_x = np.minimum(p_y * change, 0.5)
    z, u, v = rng.standard_normal((3, c))
    root_shared, root_own = math.sqrt(s.shared), math.sqrt(1.0 - s.shared)
    f_x = np.exp(s.sigma * (root_shared * z + root_own * u))
    f_y = np.exp(s.sigma * (root_shared * z + root_own * v))
    k_xy = rng.binomial(s.n_sim, np.minimum(p_x * f_x, 0.95))
    k_yy = rng.binomial(s.n_sim, np.minimum(p_y * f_y, 0.95))
    k_yprod = rng.binomial(s.n_sim, p_y)
    k_xprod = rng.binomial(s.n_prod, p_x)
    bias = np.exp(rng.normal(math.log(8.0), 1.2, c))
    k_ch = rng.binomial(s.n_challenge, np.minimum(p_x * bias, 0.95))
    names = [f"{tag}cat{i:02d}" for i in range(c)]
    inputs = [CategoryCounts(category=name, grader_hash="g", candidate_sim=Counts(k=int(k_xy[i]), n=s.n_sim),
                             control_sim=Counts(k=int(k_yy[i]), n=s.n_sim),
                             incumbent_prod=Counts(k=int(k_yprod[i]), n=s.n_sim),
                             challenge=Counts(k=int(k_ch[i]), n=s.n_challenge))
              for i, name in enumerate(names)]
    realised = {name: Counts(k=int(k_xprod[i]), n=s.n_prod) for i, name in enumerate(names)}
    return Release(inputs=inputs, realised=realised)


def past_records(release: Release, payload: ForecastPayload, tag: str) -> list[PastForecast]:
    """(forecast, realised) records of a past release: one per category and log-normal model,
    plus the previous-production change records used by the widened diagnostic."""
    out: list[PastForecast] = []
    for cat in payload.categories:
        got = release.realised[cat.category]
        for f in cat.methods.values():
            if isinstance(f.predictive, LogNormalBinomialSpec):
                out.append(PastForecast(model=f.model, log_mean=f.predictive.log_mean,
                                        log_sd=f.predictive.log_sd, k=got.k, n=got.n, category=cat.category,
                                        release=tag))
        y = cat.y_prod
        if y is not None:
            out.append(PastForecast(model=WIDENED_METHOD, log_mean=math.log(smoothed_rate(y.k, y.n)),
                                    log_sd=math.sqrt(log_rate_variance(y.k, y.n)), k=got.k, n=got.n,
                                    category=cat.category, release=tag))
    return out


def with_study_methods(payload: ForecastPayload, prior_payload: ForecastPayload,
                       widened: Discrepancy) -> ForecastPayload:
    """Add the study-only diagnostic methods to a payload (see the module docstring)."""
    categories = []
    for cat, prior_cat in zip(payload.categories, prior_payload.categories, strict=True):
        methods = dict(cat.methods)
        prior_main = prior_cat.methods["simulation"]
        methods[PRIOR_METHOD] = prior_main.model_copy(update={"predictive": prior_main.predictive.model_copy(
            update={"model": PRIOR_METHOD})})
        sim = cat.inputs.role("candidate_sim")
        y = cat.y_prod
        if sim is not None:
            main = cat.methods["simulation"]
            methods[OLD_METHOD] = beta_rate_forecast(sim, "candidate_sim", payload.interval_level,
                                                     main.direction, main.reference, y)
        if y is not None:
            mean, sd = math.log(smoothed_rate(y.k, y.n)), math.sqrt(log_rate_variance(y.k, y.n))
            methods[WIDENED_METHOD] = lognormal_rate_forecast(mean, sd, WIDENED_METHOD, widened,
                                                              payload.interval_level, {"incumbent_prod": y},
                                                              None, None, y)
        categories.append(cat.model_copy(update={"methods": methods}))
    prior_spec = prior_payload.discrepancy["ratio_transfer"].model_copy(update={"model": PRIOR_METHOD})
    discrepancy = {**payload.discrepancy, WIDENED_METHOD: DiscrepancySpec.of(widened),
                   PRIOR_METHOD: prior_spec}
    return payload.model_copy(update={"categories": categories, "discrepancy": discrepancy})


@dataclass
class MethodTally:
    """Per-method results pooled over the worlds of one setting."""

    world_nll: list[float] = field(default_factory=list)
    sym_errors: list[float] = field(default_factory=list)
    covered: list[bool] = field(default_factory=list)
    moved: int = 0
    correct: int = 0
    claim: bool = False

    def add(self, card: Scorecard, method: str) -> None:
        rows = [r for r in card.rows if r.method == method]
        self.world_nll.append(sum(r.nll for r in rows))
        self.sym_errors.extend(r.sym_error for r in rows)
        self.covered.extend(r.covered for r in rows)
        summary = card.summary[method]
        self.claim = self.claim or summary.direction_claim
        if summary.direction_claim:
            self.moved += summary.moved
            self.correct += summary.directional_correct

    @property
    def mean_nll(self) -> float:
        return statistics.fmean(self.world_nll)

    @property
    def coverage(self) -> float:
        return sum(self.covered) / len(self.covered)

    @property
    def median_error(self) -> float:
        return statistics.median(self.sym_errors)

    @property
    def accuracy(self) -> tuple[float, float, float] | None:
        """Pooled directional accuracy with its Wilson 95% interval; None when n/a."""
        if not self.claim or self.moved == 0:
            return None
        lo, hi = wilson_interval(self.correct, self.moved)
        return self.correct / self.moved, lo, hi


@dataclass(frozen=True)
class StudyResult:
    settings: WorldSettings
    worlds: int
    tallies: dict[str, MethodTally]
    wins_vs_previous: dict[str, float]  # share of worlds where the method's NLL < previous production's
    tau: dict[str, list[float]]  # per model: posterior mean τ² per world


def run_study(settings: WorldSettings, worlds: int, seed: int = 0,
              methods: Sequence[str] = STUDY_METHODS) -> StudyResult:
    """Forecast and score ``worlds`` independent worlds of one setting (only ``methods``;
    ``previous_production`` is always scored, as the reference of "beats prev.")."""
    methods = tuple(dict.fromkeys([*methods, "previous_production"]))
    unknown = sorted(set(methods) - set(STUDY_METHODS))
    if unknown:
        raise ValueError(f"unknown study methods {unknown}; known: {', '.join(STUDY_METHODS)}")
    rng = np.random.default_rng(seed)
    tallies = {m: MethodTally() for m in methods}
    wins: dict[str, int] = dict.fromkeys(methods, 0)
    taus: dict[str, list[float]] = {m: [] for m in (*MODELS, WIDENED_METHOD)}
    for w in range(worlds):
        records: list[PastForecast] = []
        for h in range(settings.past_releases):
            past = draw_release(rng, settings)
            payload = build_forecast_payload(past.inputs, run_id=f"w{w}p{h}", created_at="t",
                                             level=settings.level)
            records += past_records(past, payload, f"past{h}")
        release = draw_release(rng, settings)
        discrepancy = {m: estimate_discrepancy(records, m) for m in MODELS}
        widened = estimate_discrepancy(records, WIDENED_METHOD)
        for m, d in (*discrepancy.items(), (WIDENED_METHOD, widened)):
            taus[m].append(d.mean_variance)
        payload = build_forecast_payload(release.inputs, run_id=f"w{w}", created_at="t", level=settings.level,
                                         discrepancy=discrepancy)
        prior_payload = build_forecast_payload(release.inputs, run_id=f"w{w}", created_at="t",
                                               level=settings.level)
        full = with_study_methods(payload, prior_payload, widened)
        chosen = full.model_copy(update={"categories": [
            c.model_copy(update={"methods": {m: f for m, f in c.methods.items() if m in methods}})
            for c in full.categories]})
        card = score_forecast(chosen, "h", release.realised, funnel_replications=200, intervals=False, seed=w)
        for m in methods:
            tallies[m].add(card, m)
        previous = tallies["previous_production"].world_nll[-1]
        for m in methods:
            wins[m] += tallies[m].world_nll[-1] < previous
    return StudyResult(settings=settings, worlds=worlds, tallies=tallies,
                       wins_vs_previous={m: wins[m] / worlds for m in methods},
                       tau={m: v for m, v in taus.items()})


def format_study(results: Sequence[StudyResult]) -> str:
    """The study table: one block per setting, one row per method."""
    lines: list[str] = []
    for res in results:
        s = res.settings
        lines.append(f"σ = {s.sigma:g} (shared ρ = {s.shared:g}), {res.worlds} worlds × {s.categories} "
                     f"categories, rates {s.rate_range[0]:g}–{s.rate_range[1]:g}, n_sim {s.n_sim:,}, "
                     f"n_prod {s.n_prod:,}, τ from {s.past_releases} past releases")
        tau_rt = math.sqrt(statistics.fmean(res.tau["ratio_transfer"]))
        tau_d = math.sqrt(statistics.fmean(res.tau["direct"]))
        true_rt = s.sigma * math.sqrt(2.0 * (1.0 - s.shared))
        lines.append(f"  estimated τ (√ of the mean E τ²): ratio transfer {tau_rt:.2f} (true {true_rt:.2f}), "
                     f"direct {tau_d:.2f} (true {s.sigma:.2f})")
        lines.append(f"  {'method':<32}{'NLL/world':>10}{'beats prev.':>12}{'median err':>11}"
                     f"{'dir. acc. (95% CI)':>24}{f'{s.level:.0%} cover':>10}")
        for m, t in res.tallies.items():
            acc = t.accuracy
            acc_text = "n/a" if acc is None else f"{acc[0]:.2f} ({acc[1]:.2f}–{acc[2]:.2f})"
            lines.append(f"  {m:<32}{t.mean_nll:>10.1f}{res.wins_vs_previous[m]:>12.0%}"
                         f"{t.median_error:>10.2f}x{acc_text:>24}{t.coverage:>10.3f}")
        lines.append("")
    return "\n".join(lines)
