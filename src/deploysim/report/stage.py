"""The report stage: the HTML report and the machine-readable exports of a run.

Everything is read from the run store, so the stage can run at any time (``deploysim
report``) and always matches the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deploysim.stages import StageReport
from deploysim.store import RunStore

STAGE = "report"


@dataclass(frozen=True)
class ReportInputs:
    html: bool = True
    export_formats: Sequence[str] = ("parquet", "jsonl")
    out: Path | None = None
    transcripts: int = 150


def run(inputs: ReportInputs, store: RunStore) -> StageReport:
    from deploysim.report.export import export_run
    from deploysim.report.html import write_report

    parts: list[str] = []
    data: dict[str, str] = {}
    if inputs.html:
        files = write_report(store, inputs.out, transcript_limit=inputs.transcripts)
        parts.append(f"report {files.html}")
        data.update(html=str(files.html), json=str(files.json))
    if inputs.export_formats:
        result = export_run(store, formats=tuple(inputs.export_formats))
        parts.append(f"export {result.out_dir}")
        data["export"] = str(result.out_dir)
    return StageReport(stage=STAGE, status="ran" if parts else "skipped", detail=", ".join(parts), data=data)
