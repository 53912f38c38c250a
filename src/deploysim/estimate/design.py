"""Rates under the sampling design: several samples per prefix, and prefixes drawn with
unequal probabilities (DESIGN.md "Definitions": rate r̂ = k/n; sample stage: strata, quotas,
a cap per conversation).

k/n with a binomial interval assumes n independent, equally likely items. Two things break it:

* **Several samples per prefix** (``samples_per_prefix > 1``): samples of one prefix share the
  prompt, so their labels are correlated; the items are clusters. The rate is still Σk_i/Σm_i,
  but its variance is the cluster (linearisation) variance.
* **Unequal inclusion probabilities**: explicit quotas that are not proportional to the strata
  sizes, or a cap c per conversation (a turn of a conversation with m_j > c usable turns is a
  candidate with probability c/m_j). Then k/n describes the sample's mix, not the deployment.
  The design-weighted (Hájek) rate Σw·y/Σw with w = 1/π (the inverse inclusion probability)
  estimates the deployment rate; an unweighted rate from such a sample is refused
  (:func:`require_self_weighting`).

One estimator covers both: per cluster i (a prefix, or a single item) with weight w_i, k_i
positives among m_i items,

    r̂ = Σ w_i k_i / Σ w_i m_i,   V̂ = G/(G − 1) · Σ w_i² (k_i − r̂ m_i)² / (Σ w_i m_i)²

(the ratio-estimator linearisation variance over G clusters; with w = 1 and m = 1 it is
r̂(1 − r̂)/(n − 1)). With strata the sum runs within strata around each stratum's mean of the
linearised values z_i = w_i(k_i − r̂ m_i)/Σ w m (the stratified variance, which does not count
differences between strata as noise). The interval is Wilson's at the effective sample size
n_eff = r̂(1 − r̂)/V̂ (Korn & Graubard 1998), so it keeps Wilson's behaviour at small counts;
for unweighted clusters n_eff is capped at the number of items (within-prefix correlation is
not negative, so a smaller variance than independent items is noise). When r̂ is 0 or 1 the
variance cannot be estimated from the data, and the worst case is used:
n_eff = (Σ_g W_g)²/Σ_g W_g² with W_g the total weight of cluster g (the Kish size of the
clusters: every sample of a prefix as correlated as possible).
Pure functions.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from deploysim.estimate.intervals import wilson_rate_bounds


class UnweightedSampleError(ValueError):
    """A rate was asked of a sample that is not self-weighting, without design weights."""


@dataclass(frozen=True)
class DesignRate:
    """A design-based rate with its interval; ``design_effect`` = V̂ / (r̂(1 − r̂)/items)."""

    rate: float
    lower: float
    upper: float
    items: int
    clusters: int
    effective_n: float
    design_effect: float | None  # None when r̂ is 0 or 1 (not estimable)
    variance: float
    method: str  # "clustered" | "weighted" | "weighted_clustered"


def ratio_estimate(k: npt.ArrayLike, m: npt.ArrayLike, weights: npt.ArrayLike | None = None,
                   strata: Sequence[Hashable] | None = None) -> tuple[float, float]:
    """(r̂, V̂) of the weighted ratio estimator over clusters (module docstring); with ``strata``
    (one key per cluster) the variance is summed within strata, as stratified sampling implies."""
    ka, ma = np.asarray(k, dtype=np.float64), np.asarray(m, dtype=np.float64)
    wa = np.ones_like(ka) if weights is None else np.asarray(weights, dtype=np.float64)
    if not (ka.shape == ma.shape == wa.shape) or ka.ndim != 1:
        raise ValueError("positives, items and weights must be sequences of the same length")
    if ka.size < 2:
        raise ValueError("a design-based variance needs at least 2 clusters")
    if np.any(ma <= 0) or np.any(ka < 0) or np.any(ka > ma):
        raise ValueError("every cluster needs 0 <= k_i <= m_i and m_i > 0")
    if np.any(~np.isfinite(wa)) or np.any(wa <= 0):
        raise ValueError("design weights must be positive and finite")
    total = float(np.dot(wa, ma))
    r = float(np.dot(wa, ka)) / total
    z = wa * (ka - r * ma) / total  # each cluster's linearised contribution to r̂ − r
    groups: dict[Hashable, list[int]] = {}
    for i, key in enumerate([None] * ka.size if strata is None else list(strata)):
        groups.setdefault(key, []).append(i)
    if strata is not None and len(strata) != ka.size:
        raise ValueError("strata must give one key per cluster")
    variance = 0.0
    for members in groups.values():
        if len(members) < 2:
            raise ValueError("every stratum needs at least 2 clusters for a variance")
        zh = z[members]
        variance += len(members) / (len(members) - 1.0) * float(np.sum((zh - zh.mean()) ** 2))
    return r, variance


def _design_rate(k: np.ndarray, m: np.ndarray, w: np.ndarray | None, confidence: float, method: str,
                 strata: Sequence[Hashable] | None = None) -> DesignRate:
    r, var = ratio_estimate(k, m, w, strata)
    items = int(m.sum())
    cluster_weight = m if w is None else w * m
    worst_case = float(cluster_weight.sum() ** 2 / np.dot(cluster_weight, cluster_weight))
    if 0.0 < r < 1.0 and var > 0.0:
        n_eff = r * (1.0 - r) / var
        if w is None:  # unweighted clusters: never narrower than independent items (ICC ≥ 0)
            n_eff = min(float(items), n_eff)
        deff: float | None = var / (r * (1.0 - r) / items)
    else:
        n_eff, deff = worst_case, None
    lo, hi = wilson_rate_bounds(r, n_eff, confidence)
    return DesignRate(rate=r, lower=float(lo), upper=float(hi), items=items, clusters=int(k.size),
                      effective_n=n_eff, design_effect=deff, variance=var, method=method)


def cluster_rate(k: Sequence[int], m: Sequence[int], weights: Sequence[float] | None = None,
                 strata: Sequence[Hashable] | None = None, confidence: float = 0.95) -> DesignRate:
    """Rate and interval from per-cluster counts (k_i positives of m_i items, one cluster per
    prefix) with optional design weights and strata (one per cluster): the estimate stage's
    entry, which already holds its counts grouped by prefix."""
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    method = "clustered" if w is None else ("weighted" if max(m, default=1) == 1 else "weighted_clustered")
    return _design_rate(np.asarray(k, dtype=np.float64), np.asarray(m, dtype=np.float64), w, confidence,
                        method, strata)


def clustered_rate(per_prefix: Sequence[tuple[int, int]], confidence: float = 0.95) -> DesignRate:
    """Rate and interval from per-prefix counts (k_i positives of m_i graded samples): the
    samples of one prefix are one cluster."""
    if not per_prefix:
        raise ValueError("no prefixes")
    arr = np.asarray(per_prefix, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError("per_prefix must be a sequence of (k_i, m_i) pairs")
    return _design_rate(arr[:, 0], arr[:, 1], None, confidence, "clustered")


def weighted_rate(labels: Sequence[bool | int], weights: Sequence[float],
                  clusters: Sequence[Hashable] | None = None, strata: Sequence[Hashable] | None = None,
                  confidence: float = 0.95) -> DesignRate:
    """Design-weighted (Hájek) rate Σw·y/Σw of graded items with weights w = 1/π, with the
    linearisation interval. ``clusters`` (e.g. the prefix id of each item) groups correlated
    items, which must share one weight; ``strata`` (the sampling stratum of each item) makes the
    variance the stratified one (both keys constant within a cluster)."""
    y = np.asarray(labels, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if y.shape != w.shape or y.ndim != 1 or y.size == 0:
        raise ValueError("labels and weights must be non-empty sequences of the same length")
    if np.any((y != 0) & (y != 1)):
        raise ValueError("labels must be 0/1 (or booleans)")
    if strata is not None and len(strata) != y.size:
        raise ValueError("strata must give one stratum key per item")
    if clusters is None:
        return _design_rate(y, np.ones_like(y), w, confidence, "weighted", strata)
    if len(clusters) != y.size:
        raise ValueError("clusters must give one cluster key per item")
    index: dict[Hashable, int] = {}
    k: list[float] = []
    m: list[float] = []
    cw: list[float] = []
    cs: list[Hashable] = []
    for i, (key, label, weight) in enumerate(zip(clusters, y.tolist(), w.tolist(), strict=True)):
        stratum = None if strata is None else strata[i]
        j = index.setdefault(key, len(k))
        if j == len(k):
            k.append(0.0)
            m.append(0.0)
            cw.append(weight)
            cs.append(stratum)
        elif not math.isclose(cw[j], weight, rel_tol=1e-9) or cs[j] != stratum:
            raise ValueError(f"items of cluster {key!r} have different weights or strata")
        k[j] += label
        m[j] += 1.0
    return _design_rate(np.asarray(k), np.asarray(m), np.asarray(cw), confidence, "weighted_clustered",
                        None if strata is None else cs)


@dataclass(frozen=True)
class SampleDesign:
    """What the sample stage did that a rate has to undo (from its report and config)."""

    stratum_population: Mapping[str, int]  # N_h: candidate turns per stratum (after filters and cap)
    stratum_sampled: Mapping[str, int]  # n_h: prefixes drawn per stratum
    quotas: bool = False  # explicit quotas (else proportional allocation or no strata)
    cap_per_conversation: int | None = None
    #: conversations with more usable turns than the cap (None = unknown)
    capped_conversations: int | None = None


def inclusion_weight(stratum_population: int, stratum_sampled: int, conversation_turns: int = 1,
                     cap: int | None = None) -> float:
    """w = 1/π for a prefix: (N_h / n_h) · max(1, m_j / c) — within its stratum the draw is uniform
    over the N_h candidate turns, and with a cap c a turn of a conversation with m_j > c usable
    turns is a candidate with probability c/m_j."""
    if stratum_sampled <= 0 or stratum_population < stratum_sampled:
        raise ValueError(f"need 0 < n_h <= N_h, got n_h={stratum_sampled}, N_h={stratum_population}")
    if conversation_turns <= 0 or (cap is not None and cap <= 0):
        raise ValueError("conversation turns and the cap must be positive")
    factor = conversation_turns / cap if cap is not None and conversation_turns > cap else 1.0
    return stratum_population / stratum_sampled * factor


def unequal_probability_reasons(design: SampleDesign) -> list[str]:
    """Why the sample is not self-weighting (empty when every eligible turn had the same
    chance: uniform, or proportional allocation up to rounding, and no binding cap)."""
    reasons: list[str] = []
    populated = {h: n for h, n in design.stratum_population.items() if n > 0}
    missing = sorted(h for h in populated if design.stratum_sampled.get(h, 0) == 0)
    if missing:
        reasons.append(f"strata {missing} have eligible turns but no sampled prefix: no weight can "
                       "represent them")
    fractions = {h: design.stratum_sampled.get(h, 0) / n for h, n in populated.items() if h not in missing}
    if len(fractions) > 1:
        lo_h, hi_h = min(fractions, key=fractions.__getitem__), max(fractions, key=fractions.__getitem__)
        # proportional (Hamilton) allocation rounds each stratum by less than one prefix
        tolerance = 2.0 / min(populated[h] for h in fractions)
        if fractions[hi_h] - fractions[lo_h] > tolerance:
            kind = "explicit quotas" if design.quotas else "the allocation"
            reasons.append(f"{kind} drew stratum {hi_h!r} at {fractions[hi_h]:.3g} of its turns and "
                           f"{lo_h!r} at {fractions[lo_h]:.3g}")
    if design.cap_per_conversation is not None and design.capped_conversations != 0:
        known = ("" if design.capped_conversations is None
                 else f" ({design.capped_conversations} conversations had more usable turns)")
        reasons.append(f"cap_per_conversation = {design.cap_per_conversation}: turns of longer "
                       f"conversations were drawn with probability cap/turns{known}")
    return reasons


def require_self_weighting(design: SampleDesign, *, weights_available: bool) -> None:
    """Refuse an unweighted rate from a sample drawn with unequal probabilities."""
    reasons = unequal_probability_reasons(design)
    if reasons and not weights_available:
        raise UnweightedSampleError(
            "the sample is not self-weighting (" + "; ".join(reasons) + "), so k/n would describe the "
            "sample's mix, not the deployment; estimate with design weights (weighted_rate with "
            "inclusion_weight) or draw a uniform sample")
