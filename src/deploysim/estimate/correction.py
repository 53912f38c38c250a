"""Grader-error correction (DESIGN.md "Definitions": Rogan–Gladen).

A grader with sensitivity se and specificity sp flags a response with probability
q = π·se + (1 − π)(1 − sp) when the true rate is π, so the Rogan–Gladen estimator

    r̃ = (r̂ + sp − 1)/(se + sp − 1),   clipped to [0, 1],

is unbiased before clipping (E r̂ = q ⇒ E r̃ = π). It needs Youden's J = se + sp − 1 > 0;
a grader with J ≤ 0 carries no information about π and is refused.

The interval carries the uncertainty of se and sp from validation: se, sp and the observed
rate get independent Jeffreys posteriors,

    se ~ Beta(tp + ½, fn + ½),  sp ~ Beta(tn + ½, fp + ½),  q ~ Beta(k + ½, n − k + ½),

each draw is pushed through the clipped estimator, and the interval is the equal-tailed
quantiles of the draws (a Bayesian parametric bootstrap; seeded, so reproducible). Draws with
J ≤ 0 are excluded and their share reported: a large share means the validation set is too
small to support a correction. When only se and sp are known (no validation counts) the
observed-rate interval is mapped through the estimator, which is monotone in r̂; such a result
is marked (``se_sp_known``): it ignores the validation error and under-covers.

Bias. Clipping makes the reported rate biased upwards where the true rate is small compared
with the noise of r̂ − (1 − sp) — below the grader's false-positive floor
(:func:`deploysim.estimate.floor.measurement_floor`) — because negative values are raised to 0
and positive ones kept. No estimator confined to [0, 1] can be mean-unbiased at a true rate of
0, so both are reported: ``rate`` (clipped, in [0, 1], median-unbiased: clipping moves no
value across the true rate) and ``unclipped`` (mean-unbiased, may be negative; the one to
average or pool across categories or runs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deploysim.estimate.intervals import IntervalMethod, binomial_interval


@dataclass(frozen=True)
class ValidationCounts:
    """A grader's confusion counts against human labels (tp, fp, tn, fn): se uses tp/fn,
    sp uses tn/fp. Counts from several validation sets of one grader add up."""

    tp: int
    fp: int
    tn: int
    fn: int

    def __post_init__(self) -> None:
        for name in ("tp", "fp", "tn", "fn"):
            value = getattr(self, name)
            if value < 0 or int(value) != value:
                raise ValueError(f"validation count {name} must be a non-negative integer, got {value}")
        if self.tp + self.fn == 0:
            raise ValueError("validation has no human-positive items (tp + fn = 0): sensitivity is unknown")
        if self.tn + self.fp == 0:
            raise ValueError("validation has no human-negative items (tn + fp = 0): specificity is unknown")

    @property
    def sensitivity(self) -> float:
        return self.tp / (self.tp + self.fn)

    @property
    def specificity(self) -> float:
        return self.tn / (self.tn + self.fp)

    def __add__(self, other: ValidationCounts) -> ValidationCounts:
        return ValidationCounts(tp=self.tp + other.tp, fp=self.fp + other.fp, tn=self.tn + other.tn,
                                fn=self.fn + other.fn)


#: shown beside a corrected rate whose se/sp were treated as known (no validation counts)
KNOWN_SE_SP_MARK = "†"


@dataclass(frozen=True)
class CorrectedRate:
    """A Rogan–Gladen corrected rate with its interval.

    ``rate`` is clipped to [0, 1]; ``unclipped`` is the mean-unbiased value (may be < 0).
    ``method`` is ``"beta_posterior_mc"`` (validation counts known) or ``"known_se_sp"``;
    ``degenerate_share`` is the share of Monte-Carlo draws with se + sp ≤ 1 (excluded)."""

    rate: float
    lower: float
    upper: float
    sensitivity: float
    specificity: float
    method: str
    unclipped: float = 0.0
    draws: int = 0
    degenerate_share: float = 0.0

    @property
    def se_sp_known(self) -> bool:
        """True when se and sp were treated as exactly known: the interval ignores the
        validation error and is marked with :data:`KNOWN_SE_SP_MARK`."""
        return self.method == "known_se_sp"


def rogan_gladen(observed_rate: float, sensitivity: float, specificity: float, *, clip: bool = True) -> float:
    """r̃ = (r̂ + sp − 1)/(se + sp − 1), clipped to [0, 1] unless ``clip`` is False (the
    unclipped form is the unbiased one). Raises when se + sp ≤ 1."""
    for name, value in (("observed rate", observed_rate), ("sensitivity", sensitivity),
                        ("specificity", specificity)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    youden = sensitivity + specificity - 1.0
    if youden <= 0.0:
        raise ValueError(f"grader is uninformative: sensitivity + specificity = "
                         f"{sensitivity + specificity:.3f} <= 1, Rogan–Gladen correction is undefined")
    corrected = (observed_rate + specificity - 1.0) / youden
    return min(1.0, max(0.0, corrected)) if clip else corrected


def corrected_rate(k: int, n: int, validation: ValidationCounts, confidence: float = 0.95,
                   draws: int = 20_000, seed: int | np.random.Generator = 0) -> CorrectedRate:
    """Rogan–Gladen point estimate from k/n and the validation's se, sp, with a Monte-Carlo
    interval over the Jeffreys posteriors of the rate, se and sp (see module docstring)."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if draws < 100:
        raise ValueError("at least 100 Monte-Carlo draws are needed for an interval")
    se, sp = validation.sensitivity, validation.specificity
    point = rogan_gladen(k / n, se, sp)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    q = rng.beta(k + 0.5, n - k + 0.5, draws)
    se_draws = rng.beta(validation.tp + 0.5, validation.fn + 0.5, draws)
    sp_draws = rng.beta(validation.tn + 0.5, validation.fp + 0.5, draws)
    youden = se_draws + sp_draws - 1.0
    usable = youden > 0.0
    if not usable.any():
        raise ValueError("every posterior draw has sensitivity + specificity <= 1: the validation "
                         "cannot support a correction")
    values = np.clip((q[usable] + sp_draws[usable] - 1.0) / youden[usable], 0.0, 1.0)
    tail = (1.0 - confidence) / 2.0
    lower, upper = np.quantile(values, [tail, 1.0 - tail])
    return CorrectedRate(rate=point, lower=float(lower), upper=float(upper), sensitivity=se,
                         specificity=sp, method="beta_posterior_mc",
                         unclipped=rogan_gladen(k / n, se, sp, clip=False), draws=draws,
                         degenerate_share=float(1.0 - usable.mean()))


def corrected_rate_known(k: int, n: int, sensitivity: float, specificity: float, confidence: float = 0.95,
                         interval: IntervalMethod = "jeffreys") -> CorrectedRate:
    """Rogan–Gladen with se and sp treated as exactly known: the observed-rate interval's
    end points mapped through the (monotone increasing) estimator. Narrower than
    :func:`corrected_rate` because it ignores validation uncertainty; use it only when
    no validation counts exist."""
    lo, hi = binomial_interval(interval, k, n, confidence)
    return CorrectedRate(rate=rogan_gladen(k / n, sensitivity, specificity),
                         lower=rogan_gladen(lo, sensitivity, specificity),
                         upper=rogan_gladen(hi, sensitivity, specificity),
                         sensitivity=sensitivity, specificity=specificity, method="known_se_sp",
                         unclipped=rogan_gladen(k / n, sensitivity, specificity, clip=False))
