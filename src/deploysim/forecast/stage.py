"""The forecast stage: lock a forecast from a run's estimates — once, and only when complete.

A forecast locks only when the simulated arms it reads (the candidate's simulation and the
control arm) are complete: every planned item is final (no item still pending generation or
grading) and at most ``[forecast] max_error_share`` of them failed. Otherwise the stage locks
nothing, reports what is missing and how to resume, and the run exits with the "incomplete"
code; ``--allow-incomplete`` (``allow_incomplete = true``) locks anyway and the file says so.

Re-running the stage never rewrites a forecast: an existing file is verified and kept, so a
resumed ``deploysim run`` keeps the forecast registered first. When the run has since graded
more items than the locked forecast was made from, the stage reports that the forecast is
stale; ``deploysim forecast lock --new-version`` then locks ``forecast.v2.json`` (and so on),
which names the content hash of the one it supersedes — the old file is never edited. Arms are
data: the stage is told which arm plays which role and hands the forecast model the estimates
by role.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploysim.estimate.discrepancy import (
    Discrepancy,
    DiscrepancyPrior,
    estimate_discrepancies,
    prior_discrepancy,
)
from deploysim.forecast.config import ForecastConfig
from deploysim.forecast.locked import verify, write_locked
from deploysim.forecast.model import MODELS, ForecastPayload, build_forecast
from deploysim.records import Comparison, Estimate, utc_now
from deploysim.stages import StageReport
from deploysim.store import RunStore
from deploysim.validate.scorecard import Scorecard, past_forecasts

STAGE = "forecast"
#: the forecast model's names for the roles it reads
ROLE_NAMES: dict[str, str] = {"candidate": "x_on_y", "control": "y_on_y", "incumbent_production": "y_prod",
                              "challenge": "challenge"}
#: the simulated roles whose completeness gates a lock
GATED_ROLES: tuple[str, ...] = ("candidate", "control")


@dataclass(frozen=True)
class ForecastInputs:
    """The forecast stage's inputs: its config section, which arm plays which role, the
    candidate model's name and generator hash (recorded in the forecast), where to write, and
    whether to lock a new version over a stale one."""

    config: ForecastConfig
    roles: Mapping[str, str]
    candidate_model: str | None = None
    candidate_generator_hash: str | None = None
    out: Path | None = None
    new_version: bool = False


@dataclass(frozen=True)
class ForecastOutcome:
    path: Path
    content_hash: str
    payload: ForecastPayload
    created: bool  # False when an existing locked file was found and verified
    stale: bool = False


class IncompleteRunError(RuntimeError):
    """The simulated arms are not complete enough to lock a forecast."""

    def __init__(self, message: str, completeness: dict[str, Any]) -> None:
        super().__init__(message)
        self.completeness = completeness


def forecast_path(store: RunStore, cfg: ForecastConfig, version: int = 1) -> Path:
    base = cfg.path or (store.run_dir / "forecast.json")
    return base if version == 1 else base.with_name(f"{base.stem}.v{version}{base.suffix}")


def forecast_versions(store: RunStore, cfg: ForecastConfig) -> list[tuple[int, Path]]:
    """The locked forecast files of a run, oldest first."""
    base = forecast_path(store, cfg)
    found = [(1, base)] if base.exists() else []
    pattern = re.compile(rf"^{re.escape(base.stem)}\.v(\d+){re.escape(base.suffix)}$")
    for p in base.parent.glob(f"{base.stem}.v*{base.suffix}"):
        if m := pattern.match(p.name):
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_forecast(store: RunStore, cfg: ForecastConfig) -> Path:
    """The newest locked forecast of the run (the first version's path when none exists yet)."""
    versions = forecast_versions(store, cfg)
    return versions[-1][1] if versions else forecast_path(store, cfg)


def estimates_by_role(estimates: Sequence[Estimate], roles: Mapping[str, str]) -> list[Estimate]:
    """The estimates of the role arms (with something graded), renamed to the forecast model's
    role names."""
    arm_to_role = {arm: ROLE_NAMES[role] for role, arm in roles.items() if role in ROLE_NAMES}
    return [e.model_copy(update={"arm": arm_to_role[e.arm]}) for e in estimates
            if e.arm in arm_to_role and e.n]


def comparisons_by_role(comparisons: Sequence[Comparison], roles: Mapping[str, str]) -> list[Comparison]:
    """The comparisons between role arms, renamed like :func:`estimates_by_role`."""
    arm_to_role = {arm: ROLE_NAMES[role] for role, arm in roles.items() if role in ROLE_NAMES}
    return [c.model_copy(update={"arm_a": arm_to_role[c.arm_a], "arm_b": arm_to_role[c.arm_b]})
            for c in comparisons if c.arm_a in arm_to_role and c.arm_b in arm_to_role]


def discrepancies(cfg: ForecastConfig) -> dict[str, Discrepancy]:
    """The discrepancy of each forecast model: estimated from past releases' scorecards when the
    run names some, else the prior (the forecast file states which)."""
    prior = DiscrepancyPrior(scale=cfg.discrepancy_prior_scale)
    records = []
    for path in cfg.past_scorecards:
        try:
            card = Scorecard.model_validate_json(path.read_bytes())
        except OSError as err:
            raise FileNotFoundError(f"forecast.past_scorecards: {path}: {err.strerror}") from None
        except ValueError as err:
            raise ValueError(f"forecast.past_scorecards: {path} is not a deploysim scorecard "
                             f"({err})") from None
        records += past_forecasts(card, release=path.parent.name or path.stem)
    if not records:
        return {m: prior_discrepancy(m, prior) for m in MODELS}
    return estimate_discrepancies(records, MODELS, priors=dict.fromkeys(MODELS, prior))


def completeness(estimates: Sequence[Estimate], roles: Mapping[str, str],
                 max_error_share: float) -> dict[str, Any]:
    """Per gated arm: planned items, graded, errors, pending and abstained, taken at the category
    that is furthest from done; ``complete`` says whether every arm passes the gate."""
    arms: dict[str, Any] = {}
    for role in GATED_ROLES:
        arm = roles.get(role)
        mine = [e for e in estimates if e.arm == arm]
        if arm is None or not mine:
            continue
        def planned(e: Estimate) -> int:
            return e.n + e.failures + sum(e.abstained.values()) + e.pending

        worst = max(mine, key=lambda e: (e.pending, e.failures / max(planned(e), 1)))
        share = worst.failures / max(planned(worst), 1)
        arms[arm] = {"role": role, "planned": planned(worst), "graded": worst.n, "errors": worst.failures,
                     "pending": worst.pending, "abstained": sum(worst.abstained.values()),
                     "error_share": share,
                     "worst_category": worst.category,
                     "complete": worst.pending == 0 and share <= max_error_share}
    return {"arms": arms, "max_error_share": max_error_share,
            "complete": bool(arms) and all(a["complete"] for a in arms.values())}


def _missing(report: dict[str, Any]) -> str:
    parts = []
    for arm, a in report["arms"].items():
        if a["complete"]:
            continue
        what = []
        if a["pending"]:
            what.append(f"{a['pending']} of {a['planned']} items pending")
        if a["error_share"] > report["max_error_share"]:
            what.append(f"{a['errors']} errors ({a['error_share']:.0%} > {report['max_error_share']:.0%})")
        parts.append(f"{arm}: {', '.join(what)} (category {a['worst_category']})")
    return "; ".join(parts) or "no estimates of the simulated arms"


def _stale(payload: ForecastPayload, now: dict[str, Any]) -> bool:
    before = payload.completeness.get("arms", {})
    return any(arm in before and a["graded"] > before[arm].get("graded", 0) for arm, a in now["arms"].items())


def lock(inputs: ForecastInputs, store: RunStore) -> ForecastOutcome:
    """Lock (or find) the run's forecast; raises :class:`IncompleteRunError` when the gate fails."""
    cfg = inputs.config
    all_estimates = store.estimates()
    gate = completeness(all_estimates, inputs.roles, cfg.max_error_share)
    versions = forecast_versions(store, cfg)
    previous: tuple[ForecastPayload, str] | None = None
    if versions and inputs.out is None:
        payload, digest = verify(versions[-1][1])
        stale = _stale(payload, gate)
        if not (inputs.new_version and stale):
            return ForecastOutcome(versions[-1][1], digest, payload, created=False, stale=stale)
        previous = (payload, digest)
    elif inputs.out is not None and inputs.out.exists():
        payload, digest = verify(inputs.out)
        return ForecastOutcome(inputs.out, digest, payload, created=False, stale=_stale(payload, gate))
    candidate = inputs.roles.get("candidate")
    estimates = estimates_by_role(all_estimates, inputs.roles)
    if not any(e.arm == "x_on_y" and e.n for e in estimates):
        raise ValueError(f"{store.run_dir}: no estimates of the candidate's simulation ({candidate}) "
                         "to forecast from; run the simulate, grade and estimate stages first")
    if not gate["complete"] and not cfg.allow_incomplete:
        raise IncompleteRunError(f"not locking a forecast on incomplete data: {_missing(gate)}. Resume with "
                                 "`deploysim run` (or `simulate`/`grade`/`estimate`), or lock anyway with "
                                 "--allow-incomplete", gate)
    run_id = str(store.get_meta("run_id") or store.run_dir.name)
    payload = build_forecast(estimates, run_id=run_id, created_at=utc_now(), level=cfg.interval,
                             candidate_model=inputs.candidate_model,
                             candidate_spec_hash=inputs.candidate_generator_hash,
                             direction_reference=cfg.direction_reference,
                             comparisons=comparisons_by_role(store.comparisons(), inputs.roles),
                             discrepancy=discrepancies(cfg))
    known = store.graders()
    used = sorted(set(payload.grader_hashes.values()))
    version = (versions[-1][0] + 1) if previous is not None else 1
    payload = payload.model_copy(update={
        "graders": {h: known[h] for h in used if h in known},
        "completeness": {**gate, "forced": not gate["complete"]}, "version": version,
        "supersedes": previous[1] if previous is not None else None})
    path = inputs.out or forecast_path(store, cfg, version)
    digest = write_locked(payload, path)
    store.put_stage_report(STAGE, "locked" if version == 1 else f"locked.v{version}", {
        "path": str(path), "content_hash": digest, "created_at": payload.created_at, "version": version,
        "categories": len(payload.categories), "interval_level": payload.interval_level,
        "grader_hashes": payload.grader_hashes, "roles": dict(inputs.roles),
        "completeness": payload.completeness,
        "supersedes": payload.supersedes})
    return ForecastOutcome(path, digest, payload, created=True)


def run(inputs: ForecastInputs, store: RunStore) -> StageReport:
    """The stage entry point."""
    if not inputs.config.enabled:
        return StageReport(stage=STAGE, status="skipped", detail="forecast disabled")
    candidate = inputs.roles.get("candidate")
    if not any(e.arm == candidate and e.n for e in store.estimates()):
        return StageReport(stage=STAGE, status="skipped",
                           detail=f"no estimates of the candidate arm {candidate}")
    try:
        outcome = lock(inputs, store)
    except IncompleteRunError as err:
        return StageReport(stage=STAGE, status="incomplete", detail=str(err),
                           data={"completeness": err.completeness})
    verb = "locked" if outcome.created else "kept (already locked)"
    forced = " while INCOMPLETE (--allow-incomplete)" if outcome.payload.completeness.get("forced") else ""
    stale = ("; STALE: the run has graded more items since it was locked — `deploysim forecast lock RUN "
             "--new-version` locks a new version" if outcome.stale else "")
    return StageReport(stage=STAGE, status="ran",
                       detail=f"{verb} {outcome.path} sha256 {outcome.content_hash[:16]}…{forced}{stale}",
                       data={"path": str(outcome.path), "content_hash": outcome.content_hash,
                             "created": outcome.created, "stale": outcome.stale,
                             "version": outcome.payload.version})
