"""The estimate stage: per-category, per-arm rates and the arm comparisons of a run.

Reads judgment counts, paired labels and grader validations from the run store, computes
(DESIGN.md step 6 and "Definitions"):

* per (category, arm): n graded items, k positives, failures (generation + grading errors,
  reported and never folded into n), abstentions by reason, pending items (planned but not yet
  generated or graded), r̂ = k/n, Wilson and Jeffreys intervals (Clopper–Pearson on request),
  the measurement floor, and the Rogan–Gladen corrected rate with an interval carrying the
  validation uncertainty when the grader has validation results. An arm with planned work but
  no graded item still gets a row (n = 0, no rate), so nothing planned disappears;
* the comparisons it is given (default: the candidate's simulation against the control arm —
  paired McNemar on shared prefixes with the paired rate ratio — and against Y production —
  two-sided Fisher exact test with the Katz rate ratio);
* Benjamini–Hochberg across categories (per comparison family) on request;

and writes ``Estimate`` / ``Comparison`` records to the store and ``estimates.json`` to the
run directory. Aggregates never mix grader hashes: a (category, arm) graded by several
graders is refused unless ``[estimate] grader_hashes`` pins one; nor generators: a simulated
arm counts only completions of its current model spec and environment.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from deploysim.estimate.comparisons import (
    PairedTable,
    benjamini_hochberg,
    fisher_exact_p,
    mcnemar_p,
    paired_rate_ratio,
    rate_ratio,
)
from deploysim.estimate.config import EstimateConfig
from deploysim.estimate.correction import ValidationCounts, corrected_rate, corrected_rate_known
from deploysim.estimate.design import DesignRate, SampleDesign, unequal_probability_reasons
from deploysim.estimate.floor import below_floor, measurement_floor
from deploysim.estimate.intervals import (
    clopper_pearson_interval,
    jeffreys_interval,
    jeffreys_rate_bounds,
    wilson_interval,
)
from deploysim.estimate.validation import GraderValidation, pool_validations
from deploysim.estimate.weighting import design_rate, run_design
from deploysim.records import Arm, Comparison, Estimate
from deploysim.stages import StageReport
from deploysim.store import RunStore
from deploysim.store.results import JudgmentCount

STAGE = "estimate"
ESTIMATES_JSON = "estimates.json"
TESTS = ("mcnemar", "fisher")


class MixedGraderError(ValueError):
    """Judgments of one category and arm come from more than one grader (hash)."""


@dataclass(frozen=True)
class ArmPlan:
    """What the estimate stage knows of one arm: its name, how many items were planned
    (pool size × samples; None when unknown), and its current generator (simulated arms)."""

    name: str
    planned: int | None = None
    generator_hash: str | None = None
    #: the prefix pool the arm answers (design weights apply to the production pool)
    pool: str = "production"


@dataclass(frozen=True)
class EstimateInputs:
    """The estimate stage's inputs: its config section, the run's arms in report order, the
    comparisons to make as (arm a, arm b, test) with test ``mcnemar`` (paired) or ``fisher``."""

    config: EstimateConfig
    arms: Sequence[ArmPlan]
    comparisons: Sequence[tuple[str, str, str]]
    #: the production pool's sampling design (from the sample stage's report); None when no
    #: sample stage ran (prefixes from elsewhere are taken as a uniform sample)
    design: SampleDesign | None = None


@dataclass(frozen=True)
class GroupCounts:
    """Judgment counts of one (category, arm) under one grader hash."""

    category: str
    arm: Arm
    grader_hash: str
    n: int
    k: int
    grading_errors: int
    abstained: int = 0


@dataclass(frozen=True)
class EstimateReport:
    estimates: list[Estimate]
    comparisons: list[Comparison]
    notes: list[str] = field(default_factory=list)
    json_path: Path | None = None

    def estimate(self, category: str, arm: str) -> Estimate | None:
        return next((e for e in self.estimates if e.category == category and e.arm == arm), None)

    def comparison(self, category: str, arm_b: str, arm_a: str | None = None) -> Comparison | None:
        return next((c for c in self.comparisons if c.category == category and c.arm_b == arm_b
                     and (arm_a is None or c.arm_a == arm_a)), None)


def estimate(inputs: EstimateInputs, store: RunStore) -> EstimateReport:
    """Estimate every (category, arm) in the store, compare the arms, persist and report.

    A category whose judgments carry several grader hashes (its grader was changed) is
    estimated with the hash of the most recent grade stage run unless ``cfg.grader_hashes``
    pins another; aggregates never mix hashes."""
    cfg = inputs.config
    notes: list[str] = []
    order = {a.name: i for i, a in enumerate(inputs.arms)}
    plans = {a.name: a for a in inputs.arms}
    generators = {a.name: a.generator_hash for a in inputs.arms if a.generator_hash}
    latest = {str(cat): str(rec["grader_hash"]) for cat, rec in store.stage_reports("grade").items()
              if isinstance(rec, dict) and "grader_hash" in rec}
    groups = select_groups(store.judgment_counts(generators), {**latest, **cfg.grader_hashes}, order)
    seen = {(g.category, g.arm) for g in groups}
    for category, grader_hash in sorted(latest.items()):  # planned arms nothing was graded in
        for arm in inputs.arms:
            if (category, arm.name) not in seen and (arm.planned or 0) > 0:
                groups.append(GroupCounts(category, arm.name, cfg.grader_hashes.get(category, grader_hash), 0,
                                          0, 0))
    groups.sort(key=lambda g: (g.category, order.get(g.arm, len(order)), g.arm))
    outcomes = {arm: _generation(store, plans.get(arm) or ArmPlan(arm)) for arm in {g.arm for g in groups}}
    design = None
    if inputs.design is not None:
        design = run_design(inputs.design, store.prefix_design_rows() if unequal_probability_reasons(
            inputs.design) else ())
        if not design.self_weighting:
            notes.append("the sample is not self-weighting (" + "; ".join(design.reasons) + "): production "
                         "rates are design-weighted" if design.weights is not None else
                         f"the sample is not self-weighting and cannot be weighted: {design.missing}")
    samples = {arm: store.max_samples(arm) for arm in outcomes}
    validations: dict[tuple[str, str], GraderValidation | None] = {}
    estimates: list[Estimate] = []
    for g in groups:
        key = (g.grader_hash, g.category)
        if key not in validations:
            validations[key] = pool_validations(store.grader_validations(g.grader_hash), g.category, notes)
        ok_done, gen_errors, not_generated = outcomes[g.arm]
        not_graded = max(ok_done - g.n - g.abstained - g.grading_errors, 0)
        reasons = store.abstention_reasons(g.category, g.arm, g.grader_hash) if g.abstained else {}
        if g.n == 0:
            notes.append(f"{g.category} / {g.arm}: no graded items ({g.grading_errors} grading errors, "
                         f"{gen_errors} generation errors, {not_generated + not_graded} pending); no rate")
        plan = plans.get(g.arm) or ArmPlan(g.arm)
        on_production = plan.pool == "production"
        rate_by_design, design_note = None, None
        if g.n and ((on_production and design is not None and not design.self_weighting)
                    or samples.get(g.arm, 1) > 1):
            per_prefix = store.prefix_label_counts(g.category, g.arm, g.grader_hash, plan.generator_hash)
            rate_by_design, design_note = design_rate(per_prefix, design, on_production_pool=on_production,
                                                      confidence=cfg.confidence)
            if design_note:
                notes.append(f"{g.category} / {g.arm}: {design_note}")
        estimates.append(estimate_group(g, gen_errors, validations[key], cfg, notes, abstained=reasons,
                                        pending=not_generated + not_graded, design=rate_by_design,
                                        design_refused=design_note))
    by_key = {(e.category, e.arm): e for e in estimates}
    comparisons: list[Comparison] = []
    for category in sorted({e.category for e in estimates}):
        for arm_a, arm_b, test in inputs.comparisons:
            a, b = by_key.get((category, arm_a)), by_key.get((category, arm_b))
            if a is None or b is None or a.n == 0 or b.n == 0:
                continue
            if a.grader_hash != b.grader_hash:
                notes.append(f"{category}: {arm_a} and {arm_b} were graded by different graders "
                             f"({a.grader_hash[:12]} vs {b.grader_hash[:12]}); not compared")
                continue
            if test == "fisher":
                comparisons.append(compare_independent(a, b, cfg))
                continue
            table = PairedTable.from_pairs(
                (la, lb) for _, la, lb in store.paired_labels(category, a.grader_hash, arm_a, arm_b))
            if table.n == 0:
                notes.append(f"{category}: no prefix graded in both {arm_a} and {arm_b}; McNemar skipped")
                continue
            comparisons.append(compare_paired(category, a.grader_hash, arm_a, arm_b, table, cfg))
    if cfg.benjamini_hochberg:
        comparisons = adjust_comparisons(comparisons, cfg.alpha)
    store.put_estimates(estimates)
    store.put_comparisons(comparisons)
    json_path = write_estimates_json(store.run_dir / ESTIMATES_JSON, estimates, comparisons, notes, cfg)
    store.put_stage_report(STAGE, "summary", {
        "estimates": len(estimates), "comparisons": len(comparisons), "notes": notes,
        "significant": sum(c.significant for c in comparisons), "json": ESTIMATES_JSON,
        "pending": sum(e.pending for e in estimates), "failures": sum(e.failures for e in estimates)})
    return EstimateReport(estimates, comparisons, notes, json_path)


def _generation(store: RunStore, plan: ArmPlan) -> tuple[int, int, int]:
    """(ok completions, generation errors, not yet generated) of an arm's current generator."""
    gh = plan.generator_hash
    ok = store.count_completions(arm=plan.name, status="ok", generator_hash=gh)
    errors = store.count_completions(arm=plan.name, status="error", generator_hash=gh)
    planned = plan.planned if plan.planned is not None else ok + errors
    return ok, errors, max(planned - ok - errors, 0)


def run(inputs: EstimateInputs, store: RunStore) -> StageReport:
    """The stage entry point."""
    if not store.judgment_counts():
        return StageReport(stage=STAGE, status="skipped", detail="no judgments yet")
    report = estimate(inputs, store)
    pending = sum(e.pending for e in report.estimates)
    return StageReport(stage=STAGE, status="incomplete" if pending else "ran",
                       detail=f"{len(report.estimates)} estimates, {len(report.comparisons)} comparisons"
                              + (f", {pending} items pending" if pending else "") + f" → {report.json_path}",
                       data={"report": report})


def select_groups(counts: Sequence[JudgmentCount], pinned: Mapping[str, str],
                  order: Mapping[str, int] | None = None) -> list[GroupCounts]:
    """One grader hash per (category, arm): the pinned one, else the only one; several
    unpinned hashes raise :class:`MixedGraderError`. Arms sort by ``order`` then name."""
    rank = order or {}
    by_group: dict[tuple[str, str], list[GroupCounts]] = defaultdict(list)
    for c in counts:
        by_group[(c.category, c.arm)].append(GroupCounts(c.category, c.arm, c.grader_hash, c.ok, c.positive,
                                                         c.errors, c.abstained))
    chosen: list[GroupCounts] = []
    for (category, arm), rows in sorted(by_group.items(),
                                        key=lambda kv: (kv[0][0], rank.get(kv[0][1], len(rank)), kv[0][1])):
        if category in pinned:
            match = [r for r in rows if r.grader_hash == pinned[category]]
            if not match:
                raise MixedGraderError(f"[estimate] grader_hashes pins {category!r} to {pinned[category]!r}, "
                                       f"but {arm} has judgments only from {_list_hashes(rows)}")
            chosen.append(match[0])
        elif len(rows) > 1:
            raise MixedGraderError(
                f"category {category!r}, arm {arm}: judgments from {len(rows)} different graders "
                f"({_list_hashes(rows)}); rates never mix graders — pin one with "
                f"[estimate] grader_hashes = {{ {category} = \"<hash>\" }}")
        else:
            chosen.append(rows[0])
    return chosen


def estimate_group(g: GroupCounts, generation_errors: int, validation: GraderValidation | None,
                   cfg: EstimateConfig, notes: list[str], *, abstained: Mapping[str, int] | None = None,
                   pending: int = 0, design: DesignRate | None = None,
                   design_refused: str | None = None) -> Estimate:
    """The Estimate record of one (category, arm); pure apart from appending notes.

    With a design-based rate (several samples per prefix, or design weights) the rate and
    its intervals are the design's: Wilson and Jeffreys at the effective sample size, the
    floor and the correction at the effective counts; k/n and its independent-items interval
    stay in ``extra``. ``design_refused`` marks a rate that needed the design and could not
    have it: reported as k/n, and never forecast from."""
    extra: dict[str, Any] = {"confidence": cfg.confidence, "interval": cfg.interval,
                             "grading_errors": g.grading_errors, "generation_errors": generation_errors}
    if design_refused is not None:
        extra["design"] = {"refused": design_refused}
    if g.n == 0:
        extra["below_floor"] = True
        return Estimate(id=Estimate.make_id(g.category, g.arm, g.grader_hash), category=g.category, arm=g.arm,
                        grader_hash=g.grader_hash, n=0, k=0, failures=g.grading_errors + generation_errors,
                        rate=None, wilson=(0.0, 1.0), jeffreys=(0.0, 1.0), floor=1.0,
                        abstained=dict(abstained or {}), pending=pending, extra=extra)
    k, n = g.k, g.n  # the counts the floor and the correction use: effective ones under a design
    rate, wilson = g.k / g.n, wilson_interval(g.k, g.n, cfg.confidence)
    jeffreys = jeffreys_interval(g.k, g.n, cfg.confidence)
    if design is not None:
        n = max(1, round(design.effective_n))
        k = min(n, round(design.rate * design.effective_n))
        rate, wilson = design.rate, (design.lower, design.upper)
        lo, hi = jeffreys_rate_bounds(design.rate, design.effective_n, cfg.confidence)
        jeffreys = (float(lo), float(hi))
        extra["design"] = {"method": design.method, "effective_n": design.effective_n,
                           "design_effect": design.design_effect, "clusters": design.clusters,
                           "items": design.items, "unweighted_rate": g.k / g.n,
                           "independent_wilson": list(wilson_interval(g.k, g.n, cfg.confidence))}
    if cfg.interval == "clopper_pearson":
        extra["clopper_pearson"] = list(clopper_pearson_interval(k, n, cfg.confidence))
    corrected: tuple[float, tuple[float, float]] | None = None
    if validation is not None:
        try:
            if isinstance(validation.counts, ValidationCounts):
                cr = corrected_rate(k, n, validation.counts, cfg.confidence, cfg.correction_draws,
                                    seed=cfg.seed)
            else:
                cr = corrected_rate_known(k, n, validation.sensitivity, validation.specificity,
                                          cfg.confidence)
        except ValueError as err:
            notes.append(f"{g.category} / {g.arm}: no grader-error correction ({err})")
        else:
            corrected = (cr.rate, (cr.lower, cr.upper))
            extra["correction"] = {"method": cr.method, "sensitivity": cr.sensitivity,
                                   "specificity": cr.specificity, "draws": cr.draws,
                                   "unclipped": cr.unclipped, "se_sp_known": cr.se_sp_known,
                                   "degenerate_share": cr.degenerate_share,
                                   "datasets": list(validation.datasets), **validation.count_fields()}
            if cr.degenerate_share > 0.01:
                notes.append(f"{g.category} / {g.arm}: {cr.degenerate_share:.1%} of correction draws had "
                             "se + sp <= 1; the validation set is small")
    # the floor states the grader's false-positive rate when the grader was validated
    fp, se = (0.0, 1.0) if validation is None else (1.0 - validation.specificity, validation.sensitivity)
    try:
        floor = measurement_floor(n, cfg.confidence, fp, se)
    except ValueError:  # an uninformative grader (its correction was refused with a note above)
        fp, se = 0.0, 1.0
        floor = measurement_floor(n, cfg.confidence)
    extra["floor_false_positive_rate"], extra["floor_sensitivity"] = fp, se
    extra["below_floor"] = below_floor(k, n, floor, fp, se)
    return Estimate(
        id=Estimate.make_id(g.category, g.arm, g.grader_hash), category=g.category, arm=g.arm,
        grader_hash=g.grader_hash, n=g.n, k=g.k, failures=g.grading_errors + generation_errors,
        rate=rate, wilson=wilson, jeffreys=jeffreys, floor=floor,
        abstained=dict(abstained or {}), pending=pending,
        corrected_rate=None if corrected is None else corrected[0],
        corrected_interval=None if corrected is None else corrected[1], extra=extra)


def compare_independent(a: Estimate, b: Estimate, cfg: EstimateConfig) -> Comparison:
    """Fisher exact (two-sided) and the Katz rate ratio a/b for two independent arms."""
    p = fisher_exact_p(a.k, a.n, b.k, b.n)
    rr = rate_ratio(a.k, a.n, b.k, b.n, 1.0 - cfg.alpha)  # the interval at the test's level
    return Comparison(
        id=Comparison.make_id(a.category, a.arm, b.arm, "fisher", a.grader_hash), category=a.category,
        arm_a=a.arm, arm_b=b.arm, grader_hash=a.grader_hash, ratio=rr.ratio, ratio_interval=rr.interval,
        test="fisher", p_value=p, significant=p <= cfg.alpha, alpha=cfg.alpha,
        extra={"k_a": a.k, "n_a": a.n, "k_b": b.k, "n_b": b.n, "zero_corrected": rr.zero_corrected,
               "confidence": 1.0 - cfg.alpha})


def compare_paired(category: str, grader_hash: str, arm_a: Arm, arm_b: Arm, table: PairedTable,
                   cfg: EstimateConfig) -> Comparison:
    """McNemar on the discordant pairs and the paired rate ratio on shared prefixes."""
    p = mcnemar_p(table.only_a, table.only_b, cfg.mcnemar)
    rr = paired_rate_ratio(table, 1.0 - cfg.alpha)  # the interval at the test's level
    return Comparison(
        id=Comparison.make_id(category, arm_a, arm_b, "mcnemar", grader_hash), category=category,
        arm_a=arm_a, arm_b=arm_b, grader_hash=grader_hash, ratio=rr.ratio, ratio_interval=rr.interval,
        test="mcnemar", p_value=p, significant=p <= cfg.alpha, alpha=cfg.alpha,
        extra={"method": cfg.mcnemar, "pairs": table.n, "both": table.both, "only_a": table.only_a,
               "only_b": table.only_b, "neither": table.neither, "zero_corrected": rr.zero_corrected,
               "confidence": 1.0 - cfg.alpha})


def adjust_comparisons(comparisons: Sequence[Comparison], alpha: float) -> list[Comparison]:
    """Benjamini–Hochberg across categories within each (arm_a, arm_b, test) family;
    significance then uses the adjusted p-value."""
    families: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for i, c in enumerate(comparisons):
        families[(c.arm_a, c.arm_b, c.test)].append(i)
    out = list(comparisons)
    for indices in families.values():
        adjusted = benjamini_hochberg([comparisons[i].p_value for i in indices])
        for i, p_adj in zip(indices, adjusted, strict=True):
            out[i] = comparisons[i].model_copy(update={"p_adjusted": p_adj, "significant": p_adj <= alpha})
    return out


def write_estimates_json(path: Path, estimates: Sequence[Estimate], comparisons: Sequence[Comparison],
                         notes: Sequence[str], cfg: EstimateConfig) -> Path:
    """estimates.json: the records plus the configuration that produced them (atomic write)."""
    payload = {"config": cfg.model_dump(mode="json"),
               "estimates": [e.model_dump(mode="json") for e in estimates],
               "comparisons": [c.model_dump(mode="json") for c in comparisons], "notes": list(notes)}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)
    return path


def _list_hashes(rows: Sequence[GroupCounts]) -> str:
    return ", ".join(f"{r.grader_hash[:12]} (n={r.n})" for r in rows)

