"""Post-release validation (DESIGN.md step 8): grade X's real production traffic with the
run's frozen graders and score the locked forecast and both baselines side by side.

Two stages, wired by the assembler around the ordinary grade and estimate stages:

* ``release`` (:func:`run_release`): X's production window's eligible turns enter the run as
  prefixes of the arm's pool (``release``) with X's real response as a completion of the
  candidate-production arm (``x_prod``) when that arm is logged, so they share the run's
  de-identification, grading, resume and export machinery but never the simulation's work
  list. When the arm is simulated (the demo), only the prefixes are stored and the simulate
  stage answers them;
* ``validate`` (:func:`run`): verify the forecast, read X's realised counts measured with the
  forecast's frozen grader hashes, score every method and write ``scorecard.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import orjson

from deploysim.forecast.locked import verify
from deploysim.forecast.model import Counts, ForecastPayload
from deploysim.records import Completion, Prefix, RequestSettings
from deploysim.sample.config import SampleConfig
from deploysim.sample.prefixes import production_records
from deploysim.sample.sampler import sample_prefixes
from deploysim.sources.config import SourceConfig
from deploysim.stages import StageReport
from deploysim.store import RunStore
from deploysim.validate.scorecard import Scorecard, score_forecast

PrefixTransform = Callable[[Iterable[Prefix]], Iterable[Prefix]]
STAGE = "validate"
RELEASE_STAGE = "release"
_BATCH = 1000


class GraderMismatchError(ValueError):
    """The graders that measured X's production differ from the forecast's frozen ones."""


@dataclass(frozen=True)
class ReleaseInputs:
    """X's production logs, how to sample them, the candidate-production arm (its name, pool and
    whether its responses come from the log), the de-identifier, the reader formats."""

    sources: Sequence[SourceConfig]
    sample: SampleConfig
    arm: str
    pool: str
    logged: bool
    quarantine_dir: Path
    transform: PrefixTransform | None
    formats: Sequence[object]


@dataclass(frozen=True)
class ValidateInputs:
    forecast: Path
    arm: str
    seed: int = 0


@dataclass(frozen=True)
class ValidationOutcome:
    scorecard: Scorecard
    forecast: ForecastPayload
    path: Path  # scorecard.json
    release_prefixes: int


def as_release(prefix: Prefix, arm: str, pool: str) -> tuple[Prefix, tuple[Completion,
                                                                           RequestSettings] | None]:
    """Move a sampled prefix into the release pool and its real response into ``arm``."""
    moved = prefix.model_copy(update={
        "pool": pool,
        "id": Prefix.make_id(prefix.conversation_id, prefix.turn_index, prefix.messages,
                             prefix.context.tools, pool=pool)})
    return moved, production_records(moved, arm)


def ingest_release(inputs: ReleaseInputs, store: RunStore) -> int:
    """Sample X's production window into the release pool (idempotent: re-running adds nothing)."""
    sample = sample_prefixes(inputs.sources, inputs.sample, quarantine_dir=inputs.quarantine_dir,
                             quarantine_sink=store.put_quarantined,
                             formats=inputs.formats)  # type: ignore[arg-type]
    prefixes: Iterable[Prefix] = inputs.transform(sample) if inputs.transform is not None else sample
    added = 0
    for batch in _batches((as_release(p, inputs.arm, inputs.pool) for p in prefixes), _BATCH):
        store.put_prefixes([p for p, _ in batch])
        added += len(batch)
        if inputs.logged:
            records = [r for _, r in batch if r is not None]
            store.put_request_settings({st.id: st for _, st in records}.values())
            store.put_completions([c for c, _ in records])
    for st in sample.stats:
        store.put_source(st.source, st.path, st.format, st.read, st.accepted, st.quarantined,
                         st.quarantine_path, extra={"pool": inputs.pool})
    return added


def run_release(inputs: ReleaseInputs, store: RunStore) -> StageReport:
    """The ``release`` stage entry point."""
    if not inputs.sources:
        return StageReport(stage=RELEASE_STAGE, status="skipped",
                           detail="no production logs of the candidate")
    ingest_release(inputs, store)
    n = store.count_prefixes(pool=inputs.pool)
    how = "with X's logged responses" if inputs.logged else "to be answered by the candidate"
    return StageReport(stage=RELEASE_STAGE, status="ran", detail=f"{n} prefixes in pool {inputs.pool} {how}")


def realised_counts(store: RunStore, payload: ForecastPayload, arm: str) -> dict[str, Counts]:
    """k, n of ``arm`` per forecast category, measured with the forecast's grader hash.

    Raises :class:`GraderMismatchError` when X's production was graded for a category only
    with a different grader than the forecast's."""
    counts: dict[str, Counts] = {}
    other: dict[str, set[str]] = {}
    for row in store.judgment_counts():
        if row.arm != arm or row.category not in payload.grader_hashes:
            continue
        if row.grader_hash == payload.grader_hashes[row.category]:
            counts[row.category] = Counts(k=row.positive, n=row.ok)
        else:
            other.setdefault(row.category, set()).add(row.grader_hash)
    mismatched = sorted(c for c in other if c not in counts)
    if mismatched:
        detail = "; ".join(f"{c}: forecast {payload.grader_hashes[c][:12]}, production "
                           f"{', '.join(h[:12] for h in sorted(other[c]))}" for c in mismatched)
        raise GraderMismatchError(f"refusing to score: X's production was graded with different graders "
                                  f"than the forecast's frozen ones ({detail})")
    return counts


def score(inputs: ValidateInputs, store: RunStore) -> ValidationOutcome:
    """Verify the forecast, score it against the realised counts, store and write the scorecard."""
    payload, digest = verify(inputs.forecast)
    card = score_forecast(payload, digest, realised_counts(store, payload, inputs.arm), seed=inputs.seed)
    path = store.run_dir / "scorecard.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps(card.model_dump(mode="json"), option=orjson.OPT_INDENT_2))
    tmp.replace(path)
    release = store.count_prefixes(pool="release")
    store.put_stage_report(STAGE, "scorecard", {
        "forecast": str(inputs.forecast), "forecast_hash": digest, "release_prefixes": release,
        "summary": {m: s.model_dump(mode="json") for m, s in card.summary.items()}, "missing": card.missing})
    return ValidationOutcome(card, payload, path, release)


def run(inputs: ValidateInputs, store: RunStore) -> StageReport:
    """The ``validate`` stage entry point."""
    outcome = score(inputs, store)
    parts = []
    for method, m in outcome.scorecard.summary.items():
        acc = "n/a" if not m.direction_claim or m.moved == 0 else f"{m.directional_accuracy:.0%}"
        parts.append(f"{method}: direction {acc} over {m.moved} moved, "
                     f"median error {m.median_sym_error:.2f}x, "
                     f"NLL regret {m.total_nll_regret:.1f}")
    return StageReport(stage=STAGE, status="ran", detail=f"scorecard {outcome.path}; " + "; ".join(parts),
                       data={"outcome": outcome})


def _batches(items: Iterable[tuple[Prefix, tuple[Completion, RequestSettings] | None]],
             size: int) -> Iterator[list[tuple[Prefix, tuple[Completion, RequestSettings] | None]]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch
