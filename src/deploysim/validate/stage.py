"""Post-release validation (DESIGN.md step 8): grade X's real production traffic with the
run's frozen graders and score the locked forecast and both baselines side by side.

The release window's eligible turns enter the run as prefixes of the ``release`` pool with
X's real response as an ``x_prod`` completion, so they share the run's de-identification,
grading, resume and export machinery but never the simulation's work list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import orjson

from deploysim.config import RunConfig
from deploysim.forecast.locked import verify
from deploysim.forecast.model import Counts, ForecastPayload
from deploysim.records import Completion, Prefix
from deploysim.sample.config import SampleConfig
from deploysim.sample.prefixes import production_completion
from deploysim.sample.sampler import sample_prefixes
from deploysim.sources.config import SourceConfig
from deploysim.store import RunStore
from deploysim.validate.scorecard import Scorecard, score_forecast

PrefixTransform = Callable[[Iterable[Prefix]], Iterable[Prefix]]
STAGE = "validate"
_BATCH = 1000


class GraderMismatchError(ValueError):
    """The graders that measured X's production differ from the forecast's frozen ones."""


@dataclass(frozen=True)
class ValidationOutcome:
    scorecard: Scorecard
    forecast: ForecastPayload
    path: Path  # scorecard.json
    release_prefixes: int


def as_release(prefix: Prefix) -> tuple[Prefix, Completion | None]:
    """Move a sampled prefix into the ``release`` pool and its real response into arm ``x_prod``."""
    moved = prefix.model_copy(update={
        "pool": "release",
        "id": Prefix.make_id(prefix.conversation_id, prefix.turn_index, prefix.messages,
                             prefix.context.tools, pool="release")})
    comp = production_completion(moved)
    if comp is None:
        return moved, None
    return moved, comp.model_copy(update={
        "arm": "x_prod", "id": Completion.make_id(moved.id, "x_prod", comp.model_spec_hash, 0)})


def ingest_release(store: RunStore, production: Sequence[SourceConfig], cfg: SampleConfig, *,
                   quarantine_dir: Path, transform: PrefixTransform | None = None,
                   with_responses: bool = True) -> int:
    """Sample X's production window into the release pool (idempotent: re-running adds nothing).

    ``with_responses=False`` stores only the prefixes, for a release that is itself simulated
    (the demo runs the candidate on them as arm ``x_prod``)."""
    sample = sample_prefixes(production, cfg, quarantine_dir=quarantine_dir,
                             quarantine_sink=store.put_quarantined)
    prefixes: Iterable[Prefix] = transform(sample) if transform is not None else sample
    added = 0
    for batch in _batches((as_release(p) for p in prefixes), _BATCH):
        store.put_prefixes([p for p, _ in batch])
        added += len(batch)
        if with_responses:
            store.put_completions([c for _, c in batch if c is not None])
    for st in sample.stats:
        store.put_source(st.source, st.path, st.format, st.read, st.accepted, st.quarantined,
                         st.quarantine_path, extra={"pool": "release"})
    return added


def realised_counts(store: RunStore, payload: ForecastPayload) -> dict[str, Counts]:
    """k, n of arm ``x_prod`` per forecast category, measured with the forecast's grader hash.

    Raises :class:`GraderMismatchError` when X's production was graded for a category only
    with a different grader than the forecast's."""
    counts: dict[str, Counts] = {}
    other: dict[str, set[str]] = {}
    for category, arm, grader_hash, n_ok, k, _errors in store.judgment_counts():
        if arm != "x_prod" or category not in payload.grader_hashes:
            continue
        if grader_hash == payload.grader_hashes[category]:
            counts[category] = Counts(k=k, n=n_ok)
        else:
            other.setdefault(category, set()).add(grader_hash)
    mismatched = sorted(c for c in other if c not in counts)
    if mismatched:
        detail = "; ".join(f"{c}: forecast {payload.grader_hashes[c][:12]}, production "
                           f"{', '.join(h[:12] for h in sorted(other[c]))}" for c in mismatched)
        raise GraderMismatchError(f"refusing to score: X's production was graded with different graders "
                                  f"than the forecast's frozen ones ({detail})")
    return counts


def validate_run(store: RunStore, run_config: RunConfig, forecast_path: Path,
                 production: Sequence[SourceConfig], *, sample_cfg: SampleConfig,
                 transform: PrefixTransform | None = None, progress: bool = True,
                 seed: int = 0) -> ValidationOutcome:
    """Verify the forecast, ingest and grade X's production, score, store and write the scorecard."""
    verify(forecast_path)  # fail before any work when the forecast was edited
    ingest_release(store, production, sample_cfg, quarantine_dir=store.run_dir / "quarantine",
                   transform=transform)
    return score_release(store, run_config, forecast_path, progress=progress, seed=seed)


def score_release(store: RunStore, run_config: RunConfig, forecast_path: Path, *, progress: bool = True,
                  seed: int = 0) -> ValidationOutcome:
    """Grade the run's ``x_prod`` items with the frozen graders and score the forecast."""
    from deploysim.estimate.stage import estimate_run
    from deploysim.grade.stage import grade_run

    payload, digest = verify(forecast_path)
    grade_run(store, run_config, progress=progress)
    estimate_run(store, run_config.estimate)  # X production's rates join the run's estimates
    card = score_forecast(payload, digest, realised_counts(store, payload), seed=seed)
    path = store.run_dir / "scorecard.json"
    path.write_bytes(orjson.dumps(card.model_dump(mode="json"), option=orjson.OPT_INDENT_2))
    store.put_stage_report(STAGE, "scorecard", {
        "forecast": str(forecast_path), "forecast_hash": digest, "release_prefixes": store.count_prefixes(
            pool="release"),
        "summary": {m: s.model_dump(mode="json") for m, s in card.summary.items()},
        "missing": card.missing})
    return ValidationOutcome(card, payload, path, store.count_prefixes(pool="release"))


def _batches(items: Iterable[tuple[Prefix, Completion | None]],
             size: int) -> Iterator[list[tuple[Prefix, Completion | None]]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch
