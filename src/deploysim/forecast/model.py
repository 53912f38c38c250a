"""Forecast records and how they are built from a run's estimates (DESIGN.md step 7).

Per category the forecast gives a point rate, a Beta distribution, an interval, and the
expected direction and ratio versus Y production, for the simulation and for two baselines:

- *simulation*: X→Y. Beta is the Jeffreys posterior Beta(k + ½, n − k + ½). Its direction is
  sign(log(r̂_{X→Y} / r_{Y→Y})) when the control arm exists, else against Y production.
- *previous production*: r_X = r_Y, Beta from Y production's counts, direction 0 (no change).
- *challenging prompts*: X's rate on a challenging prompt set (arm ``challenge``), direction
  against Y production. Such sets are adversarially selected, so their absolute rates are not
  representative of traffic; that bias is what the baseline exposes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from scipy import stats

from deploysim.forecast.scoring import direction, smoothed_rate
from deploysim.records import Estimate

FORMAT_VERSION = 1
METHODS: tuple[str, ...] = ("simulation", "previous_production", "challenging_prompts")


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Counts(Frozen):
    k: int
    n: int

    @property
    def rate(self) -> float:
        return self.k / self.n if self.n else math.nan


class RateForecast(Frozen):
    rate: float
    beta: tuple[float, float]
    interval: tuple[float, float]
    direction: int  # +1 up, −1 down, 0 no change, versus ``reference``
    reference: str  # which arm the direction is taken against
    ratio_vs_y_prod: float | None  # forecast rate / Y production rate (continuity rule)
    basis: Counts  # the counts the forecast was made from


class CategoryForecast(Frozen):
    category: str
    grader_hash: str
    y_prod: Counts | None
    methods: dict[str, RateForecast]


class ForecastPayload(Frozen):
    format_version: int = FORMAT_VERSION
    run_id: str
    created_at: str
    interval_level: float
    grader_hashes: dict[str, str]
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


def beta_forecast(k: int, n: int, level: float) -> tuple[float, tuple[float, float], tuple[float, float]]:
    """Point rate k/n, Jeffreys Beta(k + ½, n − k + ½), and its equal-tailed interval."""
    if n <= 0:
        raise ValueError("cannot forecast from n = 0 items")
    a, b = k + 0.5, n - k + 0.5
    lo, hi = stats.beta.ppf([(1 - level) / 2, (1 + level) / 2], a, b)
    return k / n, (a, b), (float(lo), float(hi))


def _rate_forecast(basis: Estimate, level: float, reference: Estimate | None, ref_name: str,
                   y_prod: Estimate | None, *, fixed_direction: int | None = None) -> RateForecast:
    rate, beta, interval = beta_forecast(basis.k, basis.n, level)
    if fixed_direction is not None:
        d = fixed_direction
    elif reference is not None and reference.n:
        d = direction(smoothed_rate(basis.k, basis.n), smoothed_rate(reference.k, reference.n))
    else:
        d = 0
    ratio = (smoothed_rate(basis.k, basis.n) / smoothed_rate(y_prod.k, y_prod.n)
             if y_prod is not None and y_prod.n else None)
    return RateForecast(rate=rate, beta=beta, interval=interval, direction=d, reference=ref_name,
                        ratio_vs_y_prod=ratio, basis=Counts(k=basis.k, n=basis.n))


def build_forecast(estimates: Iterable[Estimate], *, run_id: str, created_at: str, level: float = 0.9,
                   candidate_model: str | None = None, candidate_spec_hash: str | None = None,
                   direction_reference: str = "auto") -> ForecastPayload:
    """One CategoryForecast per category that has an X→Y estimate with n > 0.

    ``direction_reference``: ``auto`` (Y→Y when present, else Y production), ``y_on_y`` or
    ``y_prod``."""
    if direction_reference not in ("auto", "y_on_y", "y_prod"):
        raise ValueError(f"direction_reference must be auto, y_on_y or y_prod, not {direction_reference!r}")
    by_cat: dict[str, dict[str, Estimate]] = {}
    for e in estimates:
        arms = by_cat.setdefault(e.category, {})
        if e.arm in arms and arms[e.arm].grader_hash != e.grader_hash:
            raise ValueError(f"category {e.category!r}, arm {e.arm}: estimates from two grader hashes "
                             f"({arms[e.arm].grader_hash}, {e.grader_hash}); forecasts never mix "
                             "measurements")
        arms[e.arm] = e
    categories = []
    for cat in sorted(by_cat):
        arms = by_cat[cat]
        sim = arms.get("x_on_y")
        if sim is None or sim.n == 0:
            continue
        hashes = {e.grader_hash for e in arms.values()}
        if len(hashes) > 1:
            raise ValueError(f"category {cat!r}: arms graded by different grader hashes {sorted(hashes)}")
        y_prod, control = arms.get("y_prod"), arms.get("y_on_y")
        use_control = control is not None and control.n > 0 and direction_reference != "y_prod"
        if direction_reference == "y_on_y" and not use_control:
            raise ValueError(f"category {cat!r}: direction_reference = y_on_y but there is no Y→Y estimate")
        ref, ref_name = (control, "y_on_y") if use_control else (y_prod, "y_prod")
        methods = {"simulation": _rate_forecast(sim, level, ref, ref_name, y_prod)}
        if y_prod is not None and y_prod.n:
            methods["previous_production"] = _rate_forecast(y_prod, level, None, "y_prod", y_prod,
                                                            fixed_direction=0)
        challenge = arms.get("challenge")
        if challenge is not None and challenge.n:
            methods["challenging_prompts"] = _rate_forecast(challenge, level, y_prod, "y_prod", y_prod)
        categories.append(CategoryForecast(
            category=cat, grader_hash=sim.grader_hash,
            y_prod=Counts(k=y_prod.k, n=y_prod.n) if y_prod is not None else None, methods=methods))
    return ForecastPayload(run_id=run_id, created_at=created_at, interval_level=level,
                           grader_hashes={c.category: c.grader_hash for c in categories},
                           candidate_model=candidate_model, candidate_spec_hash=candidate_spec_hash,
                           categories=categories)
