"""The pipeline's sample stage: sources -> sampled prefixes (+ ``y_prod`` completions) in a run.

:func:`sample_to_store` reads and samples (:func:`sample_prefixes`), passes the prefixes
through ``transform`` (the de-identifier, supplied by the pipeline), writes them in sampling
order, writes each prefix's production response as a ``y_prod`` completion, and records
per-source counts and the stage report. Re-running it on the same run with the same sources
and settings finishes an interrupted write without duplicates (ids are content hashes); a
run that already holds a finished sample made differently is refused, so one run never mixes
two samples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path

from deploysim.hashing import content_hash
from deploysim.records import Prefix
from deploysim.sample.config import SampleConfig
from deploysim.sample.prefixes import production_completion
from deploysim.sample.sampler import SampleReport, sample_prefixes
from deploysim.sources.config import SourceConfig
from deploysim.sources.formats import FORMATS
from deploysim.sources.formats.base import FormatModule
from deploysim.store.db import RunStore

STAGE = "sample"
REPORT_KEY = "report"
WRITE_BATCH = 1000

PrefixTransform = Callable[[Iterable[Prefix]], Iterable[Prefix]]


def sample_config_hash(sources: Sequence[SourceConfig], cfg: SampleConfig) -> str:
    """Identity of a sample: settings plus each file's path, size and modification time."""
    files = []
    for s in sources:
        st = s.path.stat()
        files.append({**s.model_dump(mode="json"), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return content_hash({"sources": files, "sample": cfg.model_dump(mode="json")})


def sample_to_store(sources: Sequence[SourceConfig], cfg: SampleConfig, store: RunStore, *,
                    quarantine_dir: Path, transform: PrefixTransform | None = None,
                    formats: Sequence[FormatModule] = FORMATS) -> SampleReport:
    """Sample prefixes from ``sources`` into ``store``; returns the report (also stored as
    the ``sample`` stage report). A finished identical sample is not redone."""
    for src in sources:
        if not src.path.is_file():
            raise FileNotFoundError(f"source {src.path}: no such file")
    key = sample_config_hash(sources, cfg)
    previous = store.stage_reports(STAGE).get(REPORT_KEY)
    if previous is not None and previous.get("complete"):
        if previous.get("config_hash") == key:
            return SampleReport.model_validate(previous)
        raise ValueError(f"{store.run_dir} already holds a sample drawn from other sources or settings; "
                         "use a new run directory")

    sample = sample_prefixes(sources, cfg, quarantine_dir=quarantine_dir, formats=formats,
                             quarantine_sink=store.put_quarantined)
    report = sample.report
    report.config_hash = key
    store.put_stage_report(STAGE, REPORT_KEY, report.model_dump(mode="json"))
    prefixes: Iterable[Prefix] = transform(sample) if transform is not None else sample
    for batch in _batches(prefixes, WRITE_BATCH):
        store.put_prefixes(batch)
        store.put_completions([c for p in batch if (c := production_completion(p)) is not None])
    for st in sample.stats:
        store.put_source(st.source, st.path, st.format, st.read, st.accepted, st.quarantined,
                         st.quarantine_path, extra={"conversations": st.conversations,
                                                    "eligible_turns": st.eligible_turns,
                                                    "container": st.container, "compression": st.compression})
    report.complete = True
    store.put_stage_report(STAGE, REPORT_KEY, report.model_dump(mode="json"))
    return report


def _batches(items: Iterable[Prefix], size: int) -> Iterator[list[Prefix]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch
