"""The simulation-to-production discrepancy of a forecast (DESIGN.md "Definitions": forecast
distribution — "a variance estimated from past releases' validations, else a stated prior").

Model. A forecast method m states a log point forecast μ and its own sampling sd s for X's
production rate. The realised log rate differs from μ by sampling noise plus a discrepancy
δ ~ Normal(0, τ_m²) that no amount of simulation removes: the simulated environment is not
production (system prompts, tools, user mix, drift). τ_m is per method *model*
(``ratio_transfer``, ``direct``), because ratio transfer cancels the part of the distortion
that X→Y and Y→Y share and the direct forecast does not.

Prior. τ ~ half-t(ν₀, scale s₀); the default is the half-normal (ν₀ = ∞) with s₀ = 1.1,
chosen from the source paper's figures, not from any test: with δ ~ N(0, τ²) and this prior,
the median |δ| is log 1.5 = 0.405 (the paper's median symmetric error of about 1.5x) and
P(|δ| > log 10) = 5.5% (its tail errors of about 10x, i.e. roughly one of 19 categories). A
half-t/half-normal prior keeps mass near τ = 0 (7% below 0.1), so past releases showing
no discrepancy can pull τ down (an inverse-χ² prior on τ² would forbid that).

Estimate from past releases. Each past (forecast, realised) record i gives μ_i, s_i and the
realised count k_i of n_i. On a grid of 64 log-spaced τ values from 0.01 to 4 (the prior's
mass discretised exactly: each grid value gets the prior mass of its cell), the posterior
weight of τ_g is

    prior mass_g × Π_i P(k_i | n_i; μ_i, s_i² + τ_g²),

where P is the log-normal–binomial predictive (:mod:`deploysim.estimate.predictive`), so
zero counts and small counts enter exactly, with no log of a zero rate. The forecast then uses
the posterior atoms: its predictive is a mixture over τ, which carries the uncertainty of τ
itself (few past records ⇒ wide, heavy-tailed forecasts). Records of several categories of one
release are treated as independent, and δ has mean 0: a systematic bias of past forecasts is
absorbed into τ (wider forecasts), never silently corrected. Pure functions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from deploysim.estimate.predictive import lognormal_binomial_logpmf

#: the τ values the discrepancy sd is discretised on (64 log-spaced values, 0.01 … 4)
TAU_GRID: tuple[float, ...] = tuple(float(t) for t in np.geomspace(0.01, 4.0, 64))
#: posterior atoms with a smaller relative weight are dropped (and the rest renormalised)
_MIN_WEIGHT = 1e-9


@dataclass(frozen=True)
class DiscrepancyPrior:
    """τ ~ half-t(dof, scale); dof = ∞ is the half-normal (the default)."""

    scale: float = 1.1
    dof: float = math.inf

    def __post_init__(self) -> None:
        if not (self.scale > 0 and self.dof > 0):
            raise ValueError(f"discrepancy prior needs scale > 0 and dof > 0, got scale={self.scale}, "
                             f"dof={self.dof}")

    def cdf(self, tau: np.ndarray) -> np.ndarray:
        """P(τ ≤ tau) = 2·F(tau/scale) − 1 with F the standard normal or t(dof) cdf."""
        x = np.asarray(tau, dtype=np.float64) / self.scale
        base = stats.norm.cdf(x) if math.isinf(self.dof) else stats.t.cdf(x, self.dof)
        return np.asarray(2.0 * base - 1.0, dtype=np.float64)

    def describe(self) -> str:
        family = "half-normal" if math.isinf(self.dof) else f"half-t(dof={self.dof:g})"
        return f"tau ~ {family} with scale {self.scale:g}"


DEFAULT_PRIOR = DiscrepancyPrior()


@dataclass(frozen=True)
class PastForecast:
    """One earlier release's forecast for one category and the count X's production realised.

    ``model`` is the forecast model (``ratio_transfer``, ``direct``); ``log_mean`` the log of
    its point forecast and ``log_sd`` its sampling sd on the log scale (both as written in that
    forecast file); ``k`` of ``n`` the realised production count."""

    model: str
    log_mean: float
    log_sd: float
    k: int
    n: int
    category: str = ""
    release: str = ""


@dataclass(frozen=True)
class Discrepancy:
    """The distribution of the discrepancy sd τ for one forecast model, as weighted atoms."""

    model: str
    tau: tuple[float, ...]
    weights: tuple[float, ...]
    method: str  # "prior" or "grid_posterior"
    records: int
    prior: DiscrepancyPrior
    description: str

    @property
    def mean_variance(self) -> float:
        """E τ²: the discrepancy variance on the log scale stated in the forecast."""
        return float(np.dot(self.weights, np.square(self.tau)))

    def sd_quantile(self, q: float) -> float:
        """The q quantile of τ (atoms, lower quantile)."""
        index = int(np.searchsorted(np.cumsum(self.weights), q))
        return self.tau[min(index, len(self.tau) - 1)]


def prior_masses(prior: DiscrepancyPrior, grid: Sequence[float] = TAU_GRID) -> np.ndarray:
    """Prior mass of each grid value's cell (cells split at the geometric midpoints; the first
    cell reaches down to 0, the last up to ∞), so the masses sum to 1."""
    tau = np.asarray(grid, dtype=np.float64)
    edges = np.concatenate([[0.0], np.sqrt(tau[1:] * tau[:-1]), [np.inf]])
    return np.asarray(np.diff(np.concatenate([[0.0], prior.cdf(edges[1:-1]), [1.0]])), dtype=np.float64)


def prior_discrepancy(model: str, prior: DiscrepancyPrior = DEFAULT_PRIOR) -> Discrepancy:
    """The default: the prior alone, stated as such in the forecast file."""
    masses = prior_masses(prior)
    tau, weights = _compact(np.asarray(TAU_GRID), masses)
    return Discrepancy(model=model, tau=tau, weights=weights, method="prior", records=0, prior=prior,
                       description=f"default prior, no past validations supplied: {prior.describe()}")


def estimate_discrepancy(records: Iterable[PastForecast], model: str,
                         prior: DiscrepancyPrior = DEFAULT_PRIOR) -> Discrepancy:
    """Grid posterior of τ for ``model`` from the past records of that model (see module
    docstring); the prior alone when there are none."""
    mine = [r for r in records if r.model == model]
    for i, r in enumerate(mine):
        if r.n <= 0 or not 0 <= r.k <= r.n or not r.log_sd >= 0 or not math.isfinite(r.log_mean):
            raise ValueError(f"past forecast {i} ({r.release or '?'} / {r.category or '?'}): needs "
                             f"0 <= k <= n, n > 0, a finite log mean and log sd >= 0, got k={r.k}, n={r.n}, "
                             f"log_mean={r.log_mean}, log_sd={r.log_sd}")
    if not mine:
        return prior_discrepancy(model, prior)
    grid = np.asarray(TAU_GRID, dtype=np.float64)
    k = np.array([r.k for r in mine], dtype=np.float64)[:, None]
    n = np.array([r.n for r in mine], dtype=np.float64)[:, None]
    mu = np.array([r.log_mean for r in mine], dtype=np.float64)[:, None]
    s2 = np.array([r.log_sd**2 for r in mine], dtype=np.float64)[:, None]
    log_lik = lognormal_binomial_logpmf(k, n, mu, s2 + grid[None, :] ** 2)
    # each record's predictive is renormalised to p < 1, as the forecast's is
    log_below_one = stats.norm.logcdf(-mu / np.sqrt(s2 + grid[None, :] ** 2))
    total = np.sum(log_lik - log_below_one, axis=0)
    with np.errstate(divide="ignore"):
        log_post = np.log(prior_masses(prior)) + total
    weights = np.exp(log_post - special.logsumexp(log_post))
    tau, kept = _compact(grid, weights)
    return Discrepancy(model=model, tau=tau, weights=kept, method="grid_posterior", records=len(mine),
                       prior=prior,
                       description=f"grid posterior of tau (64 log-spaced values 0.01-4) from "
                                   f"{len(mine)} past (forecast, realised) records; prior "
                                   f"{prior.describe()}; likelihood: the log-normal-binomial predictive "
                                   "probability of each realised count")


def estimate_discrepancies(records: Sequence[PastForecast], models: Iterable[str],
                           priors: Mapping[str, DiscrepancyPrior] | None = None) -> dict[str, Discrepancy]:
    """:func:`estimate_discrepancy` for each model (its own prior when given, else the default)."""
    priors = priors or {}
    return {m: estimate_discrepancy(records, m, priors.get(m, DEFAULT_PRIOR)) for m in models}


def _compact(tau: np.ndarray, weights: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    keep = weights > _MIN_WEIGHT * float(weights.max())
    kept = weights[keep] / weights[keep].sum()
    return tuple(float(t) for t in tau[keep]), tuple(float(w) for w in kept)
