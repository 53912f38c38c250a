"""Forecast records and how they are built from counts per role (DESIGN.md step 7 and
"Definitions": forecast distribution, baselines).

Inputs are counts per *role*, not arm names, so any arm layout can feed the builder:
``candidate_sim`` (X→Y), ``control_sim`` (Y→Y on the same prefixes), ``incumbent_prod`` (Y's
production responses), ``challenge`` (X on a challenging prompt set), and optionally the
paired table of candidate vs control labels on shared prefixes. Per category the forecast
states, for every method, a point rate, an interval and a **predictive distribution for X's
production count k_X given n_X** (not a parameter posterior):

- ``simulation`` — with a control arm and Y production, **ratio transfer**:
  r̂_X = r_Y,prod × r̂_{X→Y} / r̂_{Y→Y}; otherwise **direct**: r̂_X = r̂_{X→Y}. Its predictive is
  log p_X ~ Normal(log r̂_X, s² + τ²) mixed over the discrepancy sd τ of that model
  (:mod:`deploysim.estimate.discrepancy`), then k_X | p_X ~ Binomial(n_X, p_X). s² is the
  sampling variance of log r̂_X: the sum of ψ₁(k + ½) − ψ₁(n + 1) (the variance of log p under
  each arm's Jeffreys posterior), with the paired delta-method variance of the log ratio when
  the paired table is given.
- ``simulation_direct`` — the plain X→Y forecast as a named alternative (only when
  ``simulation`` is ratio transfer), with its own discrepancy τ.
- ``previous_production`` — r_X = r_Y, Beta–binomial predictive from Y production's Jeffreys
  posterior; it makes no directional claim (direction ``None``).
- ``challenging_prompts`` — X's rate on the challenging set, Beta–binomial from its counts,
  direction against Y production. Adversarially selected, so absolute rates are biased.

Rates entering a ratio or a logarithm follow the continuity rule of
:mod:`deploysim.forecast.scoring` ((k + ½)/(n + 1) at k = 0 or k = n).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from scipy import special

from deploysim.estimate.discrepancy import Discrepancy, DiscrepancyPrior, prior_discrepancy
from deploysim.estimate.intervals import jeffreys_interval
from deploysim.estimate.predictive import BetaBinomialPredictive, LogNormalBinomialPredictive
from deploysim.forecast.scoring import direction, smoothed_rate
from deploysim.records import Comparison, Estimate

FORMAT_VERSION = 2
METHODS: tuple[str, ...] = ("simulation", "simulation_direct", "previous_production", "challenging_prompts")
#: forecast models that carry a discrepancy term, each with its own τ
MODELS: tuple[str, ...] = ("ratio_transfer", "direct")
ROLES: tuple[str, ...] = ("candidate_sim", "control_sim", "incumbent_prod", "challenge")
#: built-in arm name of each role (for the adapter from today's estimates)
ARM_ROLES: dict[str, str] = {"x_on_y": "candidate_sim", "y_on_y": "control_sim", "y_prod": "incumbent_prod",
                             "challenge": "challenge"}
DirectionReference = Literal["auto", "y_on_y", "y_prod"]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Counts(Frozen):
    k: int = Field(ge=0)
    n: int = Field(ge=0)

    @property
    def rate(self) -> float:
        return self.k / self.n if self.n else math.nan


class PairedCounts(Frozen):
    """Candidate (X→Y) and control (Y→Y) labels on the same prefixes."""

    both: int = Field(ge=0)
    only_candidate: int = Field(ge=0)
    only_control: int = Field(ge=0)
    neither: int = Field(ge=0)


class CategoryCounts(Frozen):
    """What the builder needs for one category: counts per role (None = role absent)."""

    category: str
    grader_hash: str
    candidate_sim: Counts | None = None
    control_sim: Counts | None = None
    incumbent_prod: Counts | None = None
    challenge: Counts | None = None
    paired: PairedCounts | None = None

    def role(self, name: str) -> Counts | None:
        value = getattr(self, name)
        return value if isinstance(value, Counts) and value.n > 0 else None


class BetaBinomialSpec(Frozen):
    family: Literal["beta_binomial"] = "beta_binomial"
    a: float
    b: float


class LogNormalBinomialSpec(Frozen):
    family: Literal["lognormal_binomial"] = "lognormal_binomial"
    log_mean: float
    log_sd: float  # the forecast's own sampling sd on the log scale
    model: str  # key of the payload's ``discrepancy`` entry whose τ atoms complete the predictive


PredictiveSpec = Annotated[BetaBinomialSpec | LogNormalBinomialSpec, Field(discriminator="family")]


class RateForecast(Frozen):
    rate: float  # point forecast: the median of the predictive rate distribution
    interval: tuple[float, float]  # equal-tailed interval of the predictive rate at the payload's level
    predictive: PredictiveSpec
    model: str  # ratio_transfer | direct | beta_posterior
    direction: int | None  # +1 up, −1 down, 0 no change, None = no directional claim
    reference: str | None  # the role the direction is taken against
    ratio_vs_y_prod: float | None  # point forecast / Y production rate (continuity rule)
    basis: dict[str, Counts]  # the counts per role the forecast was made from


class DiscrepancySpec(Frozen):
    """The discrepancy sd τ of one forecast model, as stated in the forecast file."""

    model: str
    method: str  # "prior" or "grid_posterior"
    records: int  # past (forecast, realised) records it was estimated from
    variance: float  # E τ²: the log-scale discrepancy variance
    prior: str  # the prior, stated (family and scale)
    prior_scale: float
    prior_dof: float | None  # None = half-normal
    description: str
    tau: list[float]
    weights: list[float]

    @classmethod
    def of(cls, d: Discrepancy) -> DiscrepancySpec:
        return cls(model=d.model, method=d.method, records=d.records, variance=d.mean_variance,
                   prior=d.prior.describe(), prior_scale=d.prior.scale,
                   prior_dof=None if math.isinf(d.prior.dof) else d.prior.dof, description=d.description,
                   tau=list(d.tau), weights=list(d.weights))

    def to_discrepancy(self) -> Discrepancy:
        return Discrepancy(model=self.model, tau=tuple(self.tau), weights=tuple(self.weights),
                           method=self.method, records=self.records,
                           prior=DiscrepancyPrior(self.prior_scale,
                                                  math.inf if self.prior_dof is None else self.prior_dof),
                           description=self.description)


class CategoryForecast(Frozen):
    category: str
    grader_hash: str
    inputs: CategoryCounts
    methods: dict[str, RateForecast]

    @property
    def y_prod(self) -> Counts | None:
        return self.inputs.role("incumbent_prod")


class ForecastPayload(Frozen):
    format_version: int = FORMAT_VERSION
    run_id: str
    created_at: str
    interval_level: float
    grader_hashes: dict[str, str]
    discrepancy: dict[str, DiscrepancySpec]
    candidate_model: str | None = None
    candidate_spec_hash: str | None = None
    categories: list[CategoryForecast] = Field(default_factory=list)
    #: grader hash -> the full identity of the grader that measured each category (what
    #: exactly measured this forecast; validation must use the same graders)
    graders: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: per arm the forecast reads: planned, graded, errors, pending, abstained; and whether the
    #: lock was forced while incomplete (``--allow-incomplete``)
    completeness: dict[str, Any] = Field(default_factory=dict)
    #: version of this forecast in its run (1, 2, ...) and the content hash of the one it replaces
    version: int = 1
    supersedes: str | None = None

    def category(self, name: str) -> CategoryForecast:
        for c in self.categories:
            if c.category == name:
                return c
        raise KeyError(f"forecast has no category {name!r}")

    def predictive(self, forecast: RateForecast) -> BetaBinomialPredictive | LogNormalBinomialPredictive:
        """The predictive distribution of X's production count that ``forecast`` states."""
        spec = forecast.predictive
        if isinstance(spec, BetaBinomialSpec):
            return BetaBinomialPredictive(spec.a, spec.b)
        if spec.model not in self.discrepancy:
            raise ValueError(f"forecast refers to discrepancy model {spec.model!r}, which the file does "
                             "not state")
        d = self.discrepancy[spec.model]
        return LogNormalBinomialPredictive(spec.log_mean, spec.log_sd, tuple(d.tau), tuple(d.weights))


def log_rate_variance(k: int, n: int) -> float:
    """Var log p under the Jeffreys posterior Beta(k + ½, n − k + ½): ψ₁(k + ½) − ψ₁(n + 1)."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    return float(special.polygamma(1, k + 0.5) - special.polygamma(1, n + 1.0))


def paired_log_ratio_variance(paired: PairedCounts) -> float:
    """Delta-method Var log(r̂_cand / r̂_ctrl) on shared prefixes with ½ added to each of the
    cells both, only_candidate, only_control: (b + c + 1)/((a + b + 1)(a + c + 1)) (Agresti §10.1)."""
    a, b, c = paired.both + 0.5, paired.only_candidate + 0.5, paired.only_control + 0.5
    return (b + c) / ((a + b) * (a + c))


def ratio_transfer(candidate: Counts, control: Counts, incumbent: Counts,
                   paired: PairedCounts | None = None) -> tuple[float, float]:
    """(log point, log sampling sd) of r_Y,prod × r̂_{X→Y} / r̂_{Y→Y} (continuity rule for zero counts)."""
    point = (smoothed_rate(incumbent.k, incumbent.n) * smoothed_rate(candidate.k, candidate.n)
             / smoothed_rate(control.k, control.n))
    ratio_var = (paired_log_ratio_variance(paired) if paired is not None
                 else log_rate_variance(candidate.k, candidate.n) + log_rate_variance(control.k, control.n))
    return math.log(point), math.sqrt(log_rate_variance(incumbent.k, incumbent.n) + ratio_var)


def lognormal_rate_forecast(log_mean: float, log_sd: float, model: str, discrepancy: Discrepancy,
                            level: float, basis: dict[str, Counts], d: int | None, reference: str | None,
                            y_prod: Counts | None) -> RateForecast:
    """A log-normal–binomial forecast: point exp(μ), rate interval from the mixture's quantiles."""
    predictive = LogNormalBinomialPredictive(log_mean, log_sd, discrepancy.tau, discrepancy.weights)
    rate = math.exp(log_mean)
    interval = (predictive.rate_quantile((1 - level) / 2), predictive.rate_quantile((1 + level) / 2))
    return RateForecast(rate=rate, interval=interval, model=model,
                        predictive=LogNormalBinomialSpec(log_mean=log_mean, log_sd=log_sd, model=model),
                        direction=d, reference=reference,
                        ratio_vs_y_prod=None if y_prod is None else rate / smoothed_rate(y_prod.k, y_prod.n),
                        basis=basis)


def beta_rate_forecast(counts: Counts, role: str, level: float, d: int | None, reference: str | None,
                   y_prod: Counts | None) -> RateForecast:
    """Jeffreys posterior Beta(k + ½, n − k + ½) of one arm, interval by estimate.intervals (k = 0 rule)."""
    return RateForecast(
        rate=counts.k / counts.n, interval=jeffreys_interval(counts.k, counts.n, level),
        predictive=BetaBinomialSpec(a=counts.k + 0.5, b=counts.n - counts.k + 0.5), model="beta_posterior",
        direction=d, reference=reference,
        ratio_vs_y_prod=None if y_prod is None else (smoothed_rate(counts.k, counts.n)
                                                     / smoothed_rate(y_prod.k, y_prod.n)),
        basis={role: counts})


def forecast_category(c: CategoryCounts, discrepancy: Mapping[str, Discrepancy], level: float = 0.9,
                      direction_reference: DirectionReference = "auto") -> CategoryForecast | None:
    """Every method's forecast for one category; None when there is no candidate simulation."""
    sim = c.role("candidate_sim")
    if sim is None:
        return None
    y_prod, control, challenge = c.role("incumbent_prod"), c.role("control_sim"), c.role("challenge")
    use_control = control is not None and direction_reference != "y_prod"
    if direction_reference == "y_on_y" and control is None:
        raise ValueError(f"category {c.category!r}: direction_reference = y_on_y but there is no Y→Y "
                         "(control) count")
    ref_counts, ref_role = (control, "control_sim") if use_control else (y_prod, "incumbent_prod")
    sim_direction = (None if ref_counts is None
                     else direction(smoothed_rate(sim.k, sim.n), smoothed_rate(ref_counts.k, ref_counts.n)))
    sim_reference = None if ref_counts is None else ref_role
    direct_mean, direct_sd = math.log(smoothed_rate(sim.k, sim.n)), math.sqrt(log_rate_variance(sim.k, sim.n))
    methods: dict[str, RateForecast] = {}
    direct_basis = {"candidate_sim": sim}
    if control is not None and y_prod is not None:
        mean, sd = ratio_transfer(sim, control, y_prod, c.paired)
        basis = {"candidate_sim": sim, "control_sim": control, "incumbent_prod": y_prod}
        methods["simulation"] = lognormal_rate_forecast(mean, sd, "ratio_transfer",
                                                        discrepancy["ratio_transfer"], level, basis,
                                                        sim_direction, sim_reference, y_prod)
        methods["simulation_direct"] = lognormal_rate_forecast(direct_mean, direct_sd, "direct",
                                                               discrepancy["direct"], level, direct_basis,
                                                               sim_direction, sim_reference, y_prod)
    else:
        methods["simulation"] = lognormal_rate_forecast(direct_mean, direct_sd, "direct",
                                                        discrepancy["direct"], level, direct_basis,
                                                        sim_direction, sim_reference, y_prod)
    if y_prod is not None:
        methods["previous_production"] = beta_rate_forecast(y_prod, "incumbent_prod", level, None, None,
                                                            y_prod)
    if challenge is not None:
        challenge_direction = (None if y_prod is None else direction(smoothed_rate(challenge.k, challenge.n),
                                                                     smoothed_rate(y_prod.k, y_prod.n)))
        reference = None if y_prod is None else "incumbent_prod"
        methods["challenging_prompts"] = beta_rate_forecast(challenge, "challenge", level,
                                                            challenge_direction, reference, y_prod)
    return CategoryForecast(category=c.category, grader_hash=c.grader_hash, inputs=c, methods=methods)


def build_forecast_payload(categories: Iterable[CategoryCounts], *, run_id: str, created_at: str,
                           level: float = 0.9, discrepancy: Mapping[str, Discrepancy] | None = None,
                           candidate_model: str | None = None, candidate_spec_hash: str | None = None,
                           direction_reference: DirectionReference = "auto") -> ForecastPayload:
    """The forecast payload from counts per role. ``discrepancy`` maps a model
    (``ratio_transfer``, ``direct``) to its τ distribution — from
    :func:`deploysim.estimate.discrepancy.estimate_discrepancy` on past validations; a model
    left out gets the documented default prior, and the file says which was used."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"interval level must be in (0, 1), got {level}")
    if direction_reference not in ("auto", "y_on_y", "y_prod"):
        raise ValueError(f"direction_reference must be auto, y_on_y or y_prod, not {direction_reference!r}")
    given = dict(discrepancy or {})
    unknown = sorted(set(given) - set(MODELS))
    if unknown:
        raise ValueError(f"discrepancy given for unknown forecast models {unknown}; known: "
                         f"{', '.join(MODELS)}")
    disc = {m: given.get(m) or prior_discrepancy(m) for m in MODELS}
    forecasts: list[CategoryForecast] = []
    seen: set[str] = set()
    for c in sorted(categories, key=lambda c: c.category):
        if c.category in seen:
            raise ValueError(f"category {c.category!r} is given twice")
        seen.add(c.category)
        cf = forecast_category(c, disc, level, direction_reference)
        if cf is not None:
            forecasts.append(cf)
    return ForecastPayload(run_id=run_id, created_at=created_at, interval_level=level,
                           grader_hashes={c.category: c.grader_hash for c in forecasts},
                           discrepancy={m: DiscrepancySpec.of(d) for m, d in disc.items()},
                           candidate_model=candidate_model, candidate_spec_hash=candidate_spec_hash,
                           categories=forecasts)


def category_counts_from_estimates(estimates: Iterable[Estimate],
                                   comparisons: Sequence[Comparison] = ()) -> list[CategoryCounts]:
    """Counts per role from estimate records of the built-in arms (x_on_y, y_on_y, y_prod,
    challenge), with the paired table from a McNemar comparison of x_on_y vs y_on_y when given.
    Refuses a category whose arms were graded with different grader hashes."""
    by_cat: dict[str, dict[str, Estimate]] = {}
    for e in estimates:
        if e.arm not in ARM_ROLES:
            continue
        arms = by_cat.setdefault(e.category, {})
        if e.arm in arms and arms[e.arm].grader_hash != e.grader_hash:
            raise ValueError(f"category {e.category!r}, arm {e.arm}: estimates from two grader hashes "
                             f"({arms[e.arm].grader_hash}, {e.grader_hash}); forecasts never mix "
                             "measurements")
        arms[e.arm] = e
    paired: dict[str, PairedCounts] = {}
    for comp in comparisons:
        if comp.test == "mcnemar" and (comp.arm_a, comp.arm_b) == ("x_on_y", "y_on_y"):
            x = comp.extra
            paired[comp.category] = PairedCounts(both=int(x["both"]), only_candidate=int(x["only_a"]),
                                                 only_control=int(x["only_b"]), neither=int(x["neither"]))
    out: list[CategoryCounts] = []
    for cat, arms in sorted(by_cat.items()):
        hashes = {e.grader_hash for e in arms.values()}
        if len(hashes) > 1:
            raise ValueError(f"category {cat!r}: arms graded by different grader hashes {sorted(hashes)}")
        roles = {ARM_ROLES[arm]: estimate_counts(e) for arm, e in arms.items()}
        # a design-based rate (weights, clusters) has no paired table of independent items: the
        # ratio then takes the two arms' variances as independent (wider, never narrower)
        designed = any((arms[a].extra.get("design") or {}).get("method") for a in ("x_on_y", "y_on_y")
                       if a in arms)
        out.append(CategoryCounts(category=cat, grader_hash=hashes.pop(),
                                  paired=None if designed else paired.get(cat), **roles))
    return out


def estimate_counts(e: Estimate) -> Counts:
    """The counts a forecast uses for an estimate: k and n, or under a sampling design the
    effective counts (r̂·n_eff, n_eff) rounded; refuses a rate that needed the design and could
    not have it (an unweighted rate from a sample that is not self-weighting)."""
    design = e.extra.get("design") or {}
    if design.get("refused"):
        raise ValueError(f"category {e.category!r}, arm {e.arm}: {design['refused']}; a forecast from "
                         "this rate would describe the sample's mix, not the deployment")
    if design.get("effective_n") and e.rate is not None:
        n = max(1, round(float(design["effective_n"])))
        return Counts(k=min(n, round(e.rate * float(design["effective_n"]))), n=n)
    return Counts(k=e.k, n=e.n)


def build_forecast(estimates: Iterable[Estimate], *, run_id: str, created_at: str, level: float = 0.9,
                   candidate_model: str | None = None, candidate_spec_hash: str | None = None,
                   direction_reference: DirectionReference = "auto", comparisons: Sequence[Comparison] = (),
                   discrepancy: Mapping[str, Discrepancy] | None = None) -> ForecastPayload:
    """:func:`build_forecast_payload` from a run's estimate records (built-in arm names)."""
    return build_forecast_payload(category_counts_from_estimates(estimates, comparisons), run_id=run_id,
                                  created_at=created_at, level=level, discrepancy=discrepancy,
                                  candidate_model=candidate_model, candidate_spec_hash=candidate_spec_hash,
                                  direction_reference=direction_reference)
