"""Below the measurement floor: the Gumbel-tail method of Jones et al. 2025 ("Forecasting
Rare Language Model Behaviors") and a log-normal baseline (DESIGN.md "Definitions").

Inputs are per-query elicitation probabilities p_1 … p_m (the chance that a query's response
shows the behaviour: repeated sampling at temperature > 0, or a judge's probability).

Derivation (the DESIGN.md formulas, checked). Score each query ψ = −log(−log p), so that
p = exp(−e^{−ψ}) is increasing in ψ. Let S(ψ) = P(Ψ ≥ ψ) be the survival function of scores
across the query distribution. Its empirical version among the m evaluated queries, at the
i-th largest score ψ_(i), is S_i = i/m. In the Gumbel domain of attraction the upper tail is
exponential in ψ, so

    log S(ψ) ≈ a·ψ + b   (a < 0),  fitted by least squares of log(i/m) on ψ_(i), i = 1 … top.

*Worst-query risk* at n queries is the elicitation probability of the riskiest of n queries.
Its score ψ*_n is where the expected number of queries at or above it is one:
n·S(ψ*_n) = 1 ⇔ a·ψ*_n + b = −log n ⇔ ψ*_n = −(log n + b)/a, hence

    worst-query risk(n) = exp(−e^{−ψ*_n}) = exp(−exp((log n + b)/a)),

exactly DESIGN.md's formula. At n = m it reproduces (on the fitted line) the largest
evaluated probability, and it grows towards 1 as n grows because a < 0.

*Behaviour frequency* at scale for a threshold τ is the share of queries with p ≥ τ,
S(ψ_τ) = exp(a·ψ_τ + b) with ψ_τ = −log(−log τ), and the expected number among n queries is
n·S(ψ_τ). The line only describes the tail, so when ψ_τ lies below the lowest fitted score
the empirical share of the evaluated queries is used instead (and labelled so).

*Log-normal baseline* (as in Jones et al.): log p ~ Normal(μ, σ), fitted to log p of all
queries (mean and standard deviation) or, with ``top``, by least squares of the top log p_(i)
on the normal quantiles Φ⁻¹(1 − i/m) (the same plotting positions as the Gumbel fit). Its
worst-query risk at n is the (1 − 1/n) quantile, min(1, exp(μ + σ·Φ⁻¹(1 − 1/n))), and its
behaviour frequency 1 − Φ((log τ − μ)/σ). Pure functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

FloatArray = npt.NDArray[np.float64]


TiePolicy = Literal["warn", "refuse"]


class TiedScoresError(ValueError):
    """The top elicitation scores are tied in a way the tail fit cannot (or was told not to) use."""


@dataclass(frozen=True)
class GumbelTailFit:
    """log S(ψ) ≈ slope·ψ + intercept on the ``top`` highest scores of ``queries`` queries;
    ``lowest_score`` is the smallest ψ in the fit (below it the line is not the tail);
    ``levels`` the number of fitted points (fewer than ``top`` when scores are tied) and
    ``warnings`` what the fit had to work around."""

    slope: float
    intercept: float
    queries: int
    top: int
    lowest_score: float
    levels: int = 0
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class BootstrapInterval:
    """Equal-tailed percentile-bootstrap interval; ``failed`` refits are excluded and counted."""

    lower: float
    upper: float
    level: float
    replications: int
    failed: int


@dataclass(frozen=True)
class LogNormalFit:
    """log p ~ Normal(mu, sigma); ``top`` is None when fitted to all queries."""

    mu: float
    sigma: float
    queries: int
    top: int | None


@dataclass(frozen=True)
class BehaviourFrequency:
    """Share of queries with p ≥ threshold and the expected count among ``n_queries``;
    ``method`` is ``"gumbel_tail"``, ``"empirical"`` or ``"lognormal"``."""

    threshold: float
    share: float
    expected_count: float
    method: str


@dataclass(frozen=True)
class TailForecast:
    """Both methods' forecasts at ``n_queries`` from ``queries`` evaluated queries."""

    n_queries: int
    queries: int
    largest_observed: float
    gumbel: GumbelTailFit
    gumbel_worst_query_risk: float
    lognormal: LogNormalFit
    lognormal_worst_query_risk: float
    gumbel_frequency: BehaviourFrequency | None = None
    lognormal_frequency: BehaviourFrequency | None = None
    gumbel_interval: BootstrapInterval | None = None


def elicitation_scores(probabilities: npt.ArrayLike) -> FloatArray:
    """ψ = −log(−log p) for p in [0, 1); p = 0 scores −∞. p = 1 is refused: a query that
    always elicits the behaviour makes the worst-query risk 1 at any scale (smooth repeated-
    sampling estimates with :func:`smoothed_probability`)."""
    p = _probabilities(probabilities)
    if np.any(p >= 1.0):
        raise ValueError(f"{int(np.sum(p >= 1.0))} elicitation probabilities equal 1: the score "
                         "−log(−log p) is infinite; smooth sampled estimates with (s + ½)/(K + 1)")
    with np.errstate(divide="ignore"):
        return np.asarray(-np.log(-np.log(p)), dtype=np.float64)


def smoothed_probability(successes: npt.ArrayLike, samples: npt.ArrayLike) -> FloatArray:
    """(s + ½)/(K + 1), the Jeffreys posterior mean of a query's elicitation probability from
    s behaviours in K samples: strictly inside (0, 1), so every query gets a finite score."""
    s = np.asarray(successes, dtype=np.float64)
    k = np.asarray(samples, dtype=np.float64)
    if np.any(k <= 0) or np.any(s < 0) or np.any(s > k):
        raise ValueError("need 0 <= successes <= samples and samples > 0 for every query")
    return np.asarray((s + 0.5) / (k + 1.0), dtype=np.float64)


def fit_gumbel_tail(probabilities: npt.ArrayLike, top: int = 10, ties: TiePolicy = "warn") -> GumbelTailFit:
    """Least-squares fit of the log empirical survival on the top scores.

    Without ties: log(i/m) on the i-th largest score, i = 1 … top. With ties (repeated-sampling
    estimates are discrete: every query with s hits in K samples scores the same), the
    empirical survival is evaluated at each distinct score level ℓ, S_ℓ = #(scores ≥ ℓ)/m, and
    the levels with #(scores ≥ ℓ) ≤ top are fitted, plus the first level that crosses ``top``
    unless it is the lowest score of all (the floor, e.g. (½)/(K + 1) for queries that never
    showed the behaviour) — the same points as without ties when there are none.
    ``ties="refuse"`` raises :class:`TiedScoresError` on any tie in the top instead; with fewer
    than 3 distinct levels the fit is always refused: fitting tied floor values over-forecasts."""
    if ties not in ("warn", "refuse"):
        raise ValueError(f"ties must be 'warn' or 'refuse', not {ties!r}")
    scores = np.sort(elicitation_scores(probabilities))[::-1]
    m = scores.size
    if top < 2:
        raise ValueError("the tail fit needs top >= 2 scores")
    if m <= top:
        raise ValueError(f"need more evaluated queries ({m}) than top scores ({top})")
    head = scores[:top]
    if not np.all(np.isfinite(head)):
        raise ValueError(f"fewer than {top} queries have a positive elicitation probability")
    if np.ptp(head) == 0.0:
        raise TiedScoresError(f"the top {top} elicitation probabilities are all equal: no tail slope to fit "
                              "(for repeated-sampling estimates: sample each query more often or evaluate "
                              "more queries)")
    warnings: tuple[str, ...] = ()
    tied = int(np.sum(scores[: top + 1][1:] == scores[: top + 1][:-1]))
    if tied == 0:
        x, log_survival = head, np.log(np.arange(1, top + 1) / m)
    else:
        neg_levels, counts = np.unique(-scores, return_counts=True)
        at_or_above = np.cumsum(counts)
        use = at_or_above <= top
        crossing = int(np.argmax(at_or_above > top))
        if crossing < at_or_above.size - 1:  # the crossing level, unless it is the floor (lowest score)
            use[crossing] = True
        x, log_survival = -neg_levels[use], np.log(at_or_above[use] / m)
        detail = (f"{tied} ties among the top {top + 1} scores; {x.size} distinct levels above the lowest "
                  "score in the tail")
        if x.size < 3:
            raise TiedScoresError(f"{detail}: too few to fit a tail (for repeated-sampling estimates the "
                                  "tied values are typically queries that never showed the behaviour); "
                                  "sample each query more often or evaluate more queries")
        if ties == "refuse":
            raise TiedScoresError(f"{detail}; refused (ties = 'refuse')")
        warnings = (f"{detail}: fitted the empirical survival at those levels",)
    slope, intercept = np.polyfit(x, log_survival, 1)
    if not slope < 0.0:
        raise ValueError("fitted tail slope is not negative; the scores do not form a decaying tail")
    return GumbelTailFit(slope=float(slope), intercept=float(intercept), queries=m, top=top,
                         lowest_score=float(x[-1]), levels=int(x.size), warnings=warnings)


def bootstrap_worst_query_risk(probabilities: npt.ArrayLike, n_queries: float, top: int = 10,
                               replications: int = 1000, level: float = 0.9,
                               seed: int = 0) -> BootstrapInterval:
    """Percentile bootstrap interval of the Gumbel-tail worst-query risk: resample the evaluated
    queries with replacement, refit (ties from repeated queries handled as in
    :func:`fit_gumbel_tail`), forecast, take the equal-tailed quantiles. Refits that fail (too
    few distinct levels, a non-negative slope) are counted, not dropped silently."""
    p = _probabilities(probabilities)
    if replications < 100:
        raise ValueError("at least 100 bootstrap replications are needed")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    n = _check_n(n_queries)
    rng = np.random.default_rng(seed)
    risks: list[float] = []
    for _ in range(replications):
        try:
            fit = fit_gumbel_tail(p[rng.integers(0, p.size, p.size)], top, ties="warn")
        except ValueError:
            continue
        risks.append(gumbel_worst_query_risk(fit, n))
    failed = replications - len(risks)
    if len(risks) < replications / 2:
        raise ValueError(f"{failed} of {replications} bootstrap refits failed: the tail is too thin for an "
                         "interval")
    lo, hi = np.quantile(risks, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return BootstrapInterval(lower=float(lo), upper=float(hi), level=level, replications=replications,
                             failed=failed)


def gumbel_worst_query_risk(fit: GumbelTailFit, n_queries: float) -> float:
    """exp(−exp((log n + b)/a)): the elicitation probability of the riskiest of n queries."""
    _check_n(n_queries)
    return math.exp(-math.exp((math.log(n_queries) + fit.intercept) / fit.slope))


def gumbel_tail_share(fit: GumbelTailFit, threshold: float) -> float:
    """S(ψ_τ) = min(1, exp(a·ψ_τ + b)): the fitted share of queries with p ≥ τ."""
    psi = float(elicitation_scores([threshold])[0])
    return min(1.0, math.exp(fit.slope * psi + fit.intercept))


def fit_lognormal(probabilities: npt.ArrayLike, top: int | None = None) -> LogNormalFit:
    """log p ~ Normal(μ, σ): moments of log p over all queries, or a least-squares quantile fit
    of the ``top`` largest log p_(i) on Φ⁻¹(1 − i/m)."""
    p = _probabilities(probabilities)
    m = p.size
    if np.any(p <= 0.0):
        raise ValueError(f"{int(np.sum(p <= 0.0))} elicitation probabilities are 0: log p is −∞; "
                         "smooth sampled estimates with (s + ½)/(K + 1)")
    logs = np.sort(np.log(p))[::-1]
    if top is None:
        if m < 2:
            raise ValueError("the log-normal fit needs at least 2 queries")
        return LogNormalFit(mu=float(logs.mean()), sigma=float(logs.std(ddof=1)), queries=m, top=None)
    if top < 2 or m <= top:
        raise ValueError(f"need 2 <= top < number of queries, got top={top}, queries={m}")
    quantiles = stats.norm.ppf(1.0 - np.arange(1, top + 1) / m)
    sigma, mu = np.polyfit(quantiles, logs[:top], 1)
    return LogNormalFit(mu=float(mu), sigma=float(sigma), queries=m, top=top)


def lognormal_worst_query_risk(fit: LogNormalFit, n_queries: float) -> float:
    """min(1, exp(μ + σ·Φ⁻¹(1 − 1/n))): the log-normal (1 − 1/n) quantile of p."""
    _check_n(n_queries)
    return min(1.0, math.exp(fit.mu + fit.sigma * float(stats.norm.isf(1.0 / n_queries))))


def lognormal_tail_share(fit: LogNormalFit, threshold: float) -> float:
    """1 − Φ((log τ − μ)/σ): the log-normal share of queries with p ≥ τ."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    return float(stats.norm.sf((math.log(threshold) - fit.mu) / fit.sigma))


def forecast_tail(probabilities: npt.ArrayLike, n_queries: float, top: int = 10,
                  threshold: float | None = None, lognormal_top: int | None = None,
                  interval_replications: int = 1000, interval_level: float = 0.9, seed: int = 0,
                  ties: TiePolicy = "warn") -> TailForecast:
    """Gumbel-tail and log-normal forecasts of worst-query risk (and, given a threshold,
    behaviour frequency) at ``n_queries`` from the evaluated queries' probabilities, with a
    bootstrap interval of the Gumbel forecast (``interval_replications = 0`` skips it)."""
    p = _probabilities(probabilities)
    gumbel = fit_gumbel_tail(p, top, ties)
    lognormal = fit_lognormal(p, lognormal_top)
    n = _check_n(n_queries)
    interval = (bootstrap_worst_query_risk(p, n, top, interval_replications, interval_level, seed)
                if interval_replications else None)
    forecast = TailForecast(
        n_queries=n, queries=p.size, largest_observed=float(p.max()), gumbel=gumbel,
        gumbel_worst_query_risk=gumbel_worst_query_risk(gumbel, n), lognormal=lognormal,
        lognormal_worst_query_risk=lognormal_worst_query_risk(lognormal, n), gumbel_interval=interval)
    if threshold is None:
        return forecast
    if float(elicitation_scores([threshold])[0]) >= gumbel.lowest_score:
        share, method = gumbel_tail_share(gumbel, threshold), "gumbel_tail"
    else:
        share, method = float(np.mean(p >= threshold)), "empirical"
    lognormal_share = lognormal_tail_share(lognormal, threshold)
    return replace(forecast,
                   gumbel_frequency=BehaviourFrequency(threshold, share, share * n, method),
                   lognormal_frequency=BehaviourFrequency(threshold, lognormal_share,
                                                          lognormal_share * n, "lognormal"))


def _probabilities(values: npt.ArrayLike) -> FloatArray:
    p = np.asarray(values, dtype=np.float64).ravel()
    if p.size == 0:
        raise ValueError("no elicitation probabilities given")
    bad = ~np.isfinite(p) | (p < 0.0) | (p > 1.0)
    if np.any(bad):
        index = int(np.flatnonzero(bad)[0])
        raise ValueError(f"elicitation probabilities must be in [0, 1]; item {index} is {p[index]}")
    return p


def _check_n(n_queries: float) -> int:
    if not n_queries >= 1 or not math.isfinite(n_queries):
        raise ValueError(f"number of queries must be >= 1, got {n_queries}")
    return round(n_queries)
