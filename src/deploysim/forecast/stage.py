"""The forecast stage: lock a forecast from a run's estimates (once).

Re-running the stage never rewrites a forecast: if the file exists it is verified and
reported, so a resumed ``deploysim run`` keeps the forecast that was registered first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deploysim.forecast.config import ForecastConfig
from deploysim.forecast.locked import verify, write_locked
from deploysim.forecast.model import ForecastPayload, build_forecast
from deploysim.records import utc_now
from deploysim.store import RunStore


@dataclass(frozen=True)
class ForecastOutcome:
    path: Path
    content_hash: str
    payload: ForecastPayload
    created: bool  # False when an existing locked file was found and verified


def forecast_path(store: RunStore, cfg: ForecastConfig) -> Path:
    return cfg.path or (store.run_dir / "forecast.json")


def forecast_run(store: RunStore, cfg: ForecastConfig, *, out: Path | None = None,
                 candidate_model: str | None = None,
                 candidate_spec_hash: str | None = None) -> ForecastOutcome:
    path = out or forecast_path(store, cfg)
    if path.exists():
        payload, digest = verify(path)
        return ForecastOutcome(path, digest, payload, created=False)
    estimates = store.estimates()
    if not any(e.arm == "x_on_y" and e.n for e in estimates):
        raise ValueError(f"{store.run_dir}: no X→Y estimates to forecast from; run the simulate, grade "
                         "and estimate stages first")
    run_id = str(store.get_meta("run_id") or store.run_dir.name)
    payload = build_forecast(estimates, run_id=run_id, created_at=utc_now(), level=cfg.interval,
                             candidate_model=candidate_model, candidate_spec_hash=candidate_spec_hash,
                             direction_reference=cfg.direction_reference)
    digest = write_locked(payload, path)
    store.put_stage_report("forecast", "locked", {
        "path": str(path), "content_hash": digest, "created_at": payload.created_at,
        "categories": len(payload.categories), "interval_level": payload.interval_level,
        "grader_hashes": payload.grader_hashes})
    return ForecastOutcome(path, digest, payload, created=True)
