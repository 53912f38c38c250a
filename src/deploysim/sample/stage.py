"""The pipeline's sample stage: sources -> sampled prefixes (+ production completions) in a run.

:func:`sample_to_store` reads and samples (:func:`sample_prefixes`), passes the prefixes
through ``transform`` (the de-identifier, supplied by the assembler), writes them in sampling
order, writes each prefix's production response as a completion of the incumbent's
production arm with the request it answered, and records per-source counts and the stage
report. Re-running it on the same run with the same sources and settings finishes an
interrupted write without duplicates (ids are content hashes); a run that already holds a
finished sample made differently is refused, so one run never mixes two samples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploysim.hashing import content_hash
from deploysim.records import Prefix
from deploysim.sample.config import SampleConfig
from deploysim.sample.eligibility import MISSING_STRATUM
from deploysim.sample.prefixes import production_records
from deploysim.sample.sampler import SampleReport, sample_prefixes
from deploysim.sources.config import SourceConfig
from deploysim.sources.formats.base import FormatModule
from deploysim.stages import StageReport
from deploysim.store.db import RunStore

STAGE = "sample"
REPORT_KEY = "report"
#: prefixes per store transaction, and the most messages one batch may hold: long histories
#: flush sooner, so memory stays bounded however long the conversations
WRITE_BATCH = 1000
WRITE_BATCH_MESSAGES = 50_000

PrefixTransform = Callable[[Iterable[Prefix]], Iterable[Prefix]]


@dataclass(frozen=True)
class SampleInputs:
    """The sample stage's inputs: the sources, its config section, the reader formats (from the
    registry), the de-identifier (None when disabled), where quarantined rows go, and the arm
    that holds the incumbent's production responses."""

    sources: Sequence[SourceConfig]
    config: SampleConfig
    formats: Sequence[FormatModule]
    transform: PrefixTransform | None
    quarantine_dir: Path
    production_arm: str


def sample_config_hash(sources: Sequence[SourceConfig], cfg: SampleConfig) -> str:
    """Identity of a sample: settings plus each file's path, size and modification time."""
    files = []
    for s in sources:
        st = s.path.stat()
        files.append({**s.model_dump(mode="json"), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return content_hash({"sources": files, "sample": cfg.model_dump(mode="json")})


def sample_to_store(inputs: SampleInputs, store: RunStore) -> SampleReport:
    """Sample prefixes into ``store``; returns the report (also stored as the ``sample`` stage
    report). A finished identical sample is not redone."""
    sources, cfg = inputs.sources, inputs.config
    for src in sources:
        if src.path.is_dir():
            raise FileNotFoundError(f"source {src.path}: is a directory; list its files (or a glob of them) "
                                    "as sources")
        if not src.path.is_file():
            raise FileNotFoundError(f"source {src.path}: no such file")
    key = sample_config_hash(sources, cfg)
    previous = store.stage_reports(STAGE).get(REPORT_KEY)
    if previous is not None and previous.get("complete"):
        if previous.get("config_hash") == key:
            return SampleReport.model_validate(previous)
        raise ValueError(f"{store.run_dir} already holds a sample drawn from other sources or settings; "
                         "use a new run directory")

    sample = sample_prefixes(sources, cfg, quarantine_dir=inputs.quarantine_dir, formats=inputs.formats,
                             quarantine_sink=store.put_quarantined)
    report = sample.report
    found = any(name != MISSING_STRATUM and st.population for name, st in report.strata.items())
    if cfg.stratify_by is not None and report.eligible_turns and not found:
        raise ValueError(f"sample.stratify_by = {cfg.stratify_by!r}: no conversation of the sources has this "
                         "field (fields: product_context, language, deployed_model, source, or a key of "
                         "meta.extra); nothing was stored")
    report.config_hash = key
    store.put_stage_report(STAGE, REPORT_KEY, report.model_dump(mode="json"))
    prefixes: Iterable[Prefix] = inputs.transform(sample) if inputs.transform is not None else sample
    for batch in _batches(prefixes, WRITE_BATCH):
        store.put_prefixes(batch)
        records = [r for p in batch if (r := production_records(p, inputs.production_arm)) is not None]
        store.put_request_settings({st.id: st for _, st in records}.values())
        store.put_completions([c for c, _ in records])
    for st in sample.stats:
        store.put_source(st.source, st.path, st.format, st.read, st.accepted, st.quarantined,
                         st.quarantine_path, extra={"conversations": st.conversations,
                                                    "eligible_turns": st.eligible_turns,
                                                    "container": st.container, "compression": st.compression})
    report.complete = True
    store.put_stage_report(STAGE, REPORT_KEY, report.model_dump(mode="json"))
    return report


def run(inputs: SampleInputs, store: RunStore) -> StageReport:
    """The stage entry point. Without sources it keeps the run's stored prefixes."""
    if not inputs.sources:
        if store.count_prefixes():
            return StageReport(stage=STAGE, status="skipped",
                               detail="no [[sources]]; using the run's stored prefixes")
        raise ValueError("run has no [[sources]] and no stored prefixes: nothing to simulate")
    report = sample_to_store(inputs, store)
    lines = "; ".join(report.source_lines())
    return StageReport(stage=STAGE, status="ran",
                       detail=f"{store.count_prefixes(pool='production')} prefixes ({lines})",
                       data=report.model_dump(mode="json"))


def _batches(items: Iterable[Prefix], size: int,
             max_messages: int = WRITE_BATCH_MESSAGES) -> Iterator[list[Prefix]]:
    batch: list[Prefix] = []
    messages = 0
    for item in items:
        batch.append(item)
        messages += len(item.messages)
        if len(batch) >= size or messages >= max_messages:
            yield batch
            batch, messages = [], 0
    if batch:
        yield batch
