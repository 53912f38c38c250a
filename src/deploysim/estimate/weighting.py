"""The sampling design of a run's estimates: design weights and clustered samples.

The sample stage's report (strata sizes N_h and draws n_h, the cap c per conversation,
explicit quotas) and each prefix's stratum and usable turns m_j give the prefix's inverse
inclusion probability w = (N_h/n_h)·max(1, m_j/c) (:func:`~deploysim.estimate.design.inclusion_weight`).
When the sample is not self-weighting (:func:`~deploysim.estimate.design.unequal_probability_reasons`)
a rate from the production pool is the design-weighted (Hájek) rate with its stratified
linearisation interval; when an arm holds several samples per prefix, the samples of one prefix
are one cluster. Otherwise the plain k/n with its binomial interval stands. A sample that is not
self-weighting and whose prefixes lack what a weight needs is refused for forecasting rather than
estimated as if it were uniform. Pure functions over values the stage reads from the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from deploysim.estimate.design import (
    DesignRate,
    SampleDesign,
    cluster_rate,
    inclusion_weight,
    unequal_probability_reasons,
)

#: the stratum key of an unstratified sample
WHOLE = ""


@dataclass(frozen=True)
class RunDesign:
    """The production pool's sampling design, and the weights of its prefixes when it needs
    them. ``weights`` is None when the sample is self-weighting; ``missing`` says why weights
    could not be made for a sample that needs them."""

    design: SampleDesign
    reasons: tuple[str, ...]
    weights: Mapping[str, float] | None = None
    strata: Mapping[str, str] | None = None
    missing: str | None = None

    @property
    def self_weighting(self) -> bool:
        return not self.reasons


def design_from_report(report: Mapping[str, object] | None) -> SampleDesign | None:
    """The :class:`SampleDesign` of a stored sample report (None: no sample stage ran, so the
    prefixes came from elsewhere and are taken as they are)."""
    if not report:
        return None
    strata = report.get("strata") or {}
    if isinstance(strata, Mapping) and strata:
        population = {str(h): int(v["population"]) for h, v in strata.items()}
        sampled = {str(h): int(v["sampled"]) for h, v in strata.items()}
    else:
        population = {WHOLE: int(report.get("population") or 0)}  # type: ignore[call-overload]
        sampled = {WHOLE: int(report.get("sampled") or 0)}  # type: ignore[call-overload]
    cap = report.get("cap_per_conversation")
    return SampleDesign(stratum_population=population, stratum_sampled=sampled,
                        quotas=bool(report.get("explicit_quotas")),
                        cap_per_conversation=int(cap) if isinstance(cap, int) else None)


def run_design(design: SampleDesign, prefixes: Iterable[tuple[str, str | None, int | None]]) -> RunDesign:
    """Weights for the production prefixes ``(id, stratum, usable turns)`` when the design
    needs them; a prefix outside the report's strata, or without its usable turns under a cap,
    leaves the design without weights (``missing``)."""
    reasons = tuple(unequal_probability_reasons(design))
    if not reasons:
        return RunDesign(design, reasons)
    cap = design.cap_per_conversation
    weights: dict[str, float] = {}
    strata: dict[str, str] = {}
    for prefix_id, stratum, usable in prefixes:
        h = WHOLE if set(design.stratum_population) == {WHOLE} else (stratum or "")
        population, drawn = design.stratum_population.get(h), design.stratum_sampled.get(h)
        if not population or not drawn:
            return RunDesign(design, reasons, missing=f"prefix {prefix_id} is in stratum {h!r}, which the "
                                                      "sample report does not list")
        if cap is not None and usable is None:
            return RunDesign(design, reasons, missing=f"prefix {prefix_id} does not record its "
                                                      "conversation's usable turns (sampled before they "
                                                      "were recorded); sample the run again")
        weights[prefix_id] = inclusion_weight(population, drawn, usable or 1, cap)
        strata[prefix_id] = h
    return RunDesign(design, reasons, weights=weights, strata=strata)


def design_rate(per_prefix: Sequence[tuple[str, int, int]], design: RunDesign | None, *,
                on_production_pool: bool, confidence: float) -> tuple[DesignRate | None, str | None]:
    """The design-based rate of one (category, arm) from its per-prefix counts ``(prefix id,
    k_i, m_i)``, or None when k/n stands (single samples from a self-weighting sample); the
    second value is a note when the design could not be applied."""
    weighted = on_production_pool and design is not None and not design.self_weighting
    clustered = any(m > 1 for _, _, m in per_prefix)
    if not weighted and not clustered:
        return None, None
    if weighted and design is not None and design.weights is None:
        return None, f"not self-weighting ({'; '.join(design.reasons)}) and no weights: {design.missing}"
    if len(per_prefix) < 2:
        return None, "fewer than 2 prefixes: no design-based interval"
    k = [ki for _, ki, _ in per_prefix]
    m = [mi for _, _, mi in per_prefix]
    if not weighted:
        return cluster_rate(k, m, confidence=confidence), None
    assert design is not None and design.weights is not None and design.strata is not None
    try:
        w = [design.weights[p] for p, _, _ in per_prefix]
        keys = [design.strata[p] for p, _, _ in per_prefix]
    except KeyError as err:
        return None, f"prefix {err.args[0]} has no design weight (not in the sample)"
    per_stratum: dict[str, int] = {}
    for h in keys:
        per_stratum[h] = per_stratum.get(h, 0) + 1
    # a stratum with one graded prefix has no within-stratum variance: pool the strata
    strata = keys if len(per_stratum) > 1 and min(per_stratum.values()) >= 2 else None
    return cluster_rate(k, m, w, strata, confidence), None
