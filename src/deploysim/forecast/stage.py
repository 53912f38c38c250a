"""The forecast stage: lock a forecast from a run's estimates (once).

Re-running the stage never rewrites a forecast: if the file exists it is verified and
reported, so a resumed ``deploysim run`` keeps the forecast that was registered first. Arms
are data: the stage is told which arm plays which role (the candidate's simulation, the control
arm, Y's production, the challenge baseline) and hands the forecast model the estimates by role.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deploysim.forecast.config import ForecastConfig
from deploysim.forecast.locked import verify, write_locked
from deploysim.forecast.model import ForecastPayload, build_forecast
from deploysim.records import Estimate, utc_now
from deploysim.stages import StageReport
from deploysim.store import RunStore

STAGE = "forecast"
#: the forecast model's names for the roles it reads
ROLE_NAMES: dict[str, str] = {"candidate": "x_on_y", "control": "y_on_y", "incumbent_production": "y_prod",
                              "challenge": "challenge"}


@dataclass(frozen=True)
class ForecastInputs:
    """The forecast stage's inputs: its config section, which arm plays which role, and the
    candidate model's name and generator hash (recorded in the forecast)."""

    config: ForecastConfig
    roles: Mapping[str, str]
    candidate_model: str | None = None
    candidate_generator_hash: str | None = None
    out: Path | None = None


@dataclass(frozen=True)
class ForecastOutcome:
    path: Path
    content_hash: str
    payload: ForecastPayload
    created: bool  # False when an existing locked file was found and verified


def forecast_path(store: RunStore, cfg: ForecastConfig) -> Path:
    return cfg.path or (store.run_dir / "forecast.json")


def estimates_by_role(estimates: list[Estimate], roles: Mapping[str, str]) -> list[Estimate]:
    """The estimates of the role arms, renamed to the forecast model's role names."""
    arm_to_role = {arm: ROLE_NAMES[role] for role, arm in roles.items() if role in ROLE_NAMES}
    return [e.model_copy(update={"arm": arm_to_role[e.arm]}) for e in estimates if e.arm in arm_to_role]


def lock(inputs: ForecastInputs, store: RunStore) -> ForecastOutcome:
    cfg = inputs.config
    path = inputs.out or forecast_path(store, cfg)
    if path.exists():
        payload, digest = verify(path)
        return ForecastOutcome(path, digest, payload, created=False)
    candidate = inputs.roles.get("candidate")
    estimates = estimates_by_role(store.estimates(), inputs.roles)
    if not any(e.arm == "x_on_y" and e.n for e in estimates):
        raise ValueError(f"{store.run_dir}: no estimates of the candidate's simulation ({candidate}) "
                         "to forecast "
                         "from; run the simulate, grade and estimate stages first")
    run_id = str(store.get_meta("run_id") or store.run_dir.name)
    payload = build_forecast(estimates, run_id=run_id, created_at=utc_now(), level=cfg.interval,
                             candidate_model=inputs.candidate_model,
                             candidate_spec_hash=inputs.candidate_generator_hash,
                             direction_reference=cfg.direction_reference)
    known = store.graders()
    used = sorted(set(payload.grader_hashes.values()))
    payload = payload.model_copy(update={"graders": {h: known[h] for h in used if h in known}})
    digest = write_locked(payload, path)
    store.put_stage_report(STAGE, "locked", {
        "path": str(path), "content_hash": digest, "created_at": payload.created_at,
        "categories": len(payload.categories), "interval_level": payload.interval_level,
        "grader_hashes": payload.grader_hashes, "roles": dict(inputs.roles)})
    return ForecastOutcome(path, digest, payload, created=True)


def run(inputs: ForecastInputs, store: RunStore) -> StageReport:
    """The stage entry point."""
    if not inputs.config.enabled:
        return StageReport(stage=STAGE, status="skipped", detail="forecast disabled")
    candidate = inputs.roles.get("candidate")
    if not any(e.arm == candidate and e.n for e in store.estimates()):
        return StageReport(stage=STAGE, status="skipped",
                           detail=f"no estimates of the candidate arm {candidate}")
    outcome = lock(inputs, store)
    verb = "locked" if outcome.created else "kept (already locked)"
    return StageReport(stage=STAGE, status="ran",
                       detail=f"{verb} {outcome.path} sha256 {outcome.content_hash[:16]}…",
                       data={"path": str(outcome.path), "content_hash": outcome.content_hash,
                             "created": outcome.created})
