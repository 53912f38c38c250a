"""``deploysim ingest`` (read sources, report counts) and ``deploysim sample`` (draw prefixes
into a run directory)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from deploysim.cli.common import JSON_HELP, console, print_json, user_errors

_FORMAT_HELP = "Log format of the given paths: auto, openai, wildchat, lmsys, sharegpt, oasst, hh, tau."
_MODEL_HELP = "Deployed model where the log does not name it."
_CONTEXT_HELP = "Product context where the log does not name it."


def _say(text: str) -> None:
    """Plain output: no markup (log names may hold brackets), no wrapping of paths."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _sources(paths: list[Path] | None, config: Path | None, fmt: str, deployed_model: str | None,
             product_context: str | None) -> tuple[Any, list[Any]]:
    """(run config or None, sources): the config's ``[[sources]]`` followed by ``paths``."""
    from deploysim.config import load_config
    from deploysim.sources.config import SourceConfig

    cfg = load_config(config) if config is not None else None
    sources = list(cfg.sources) if cfg is not None else []
    for p in paths or []:
        sources.append(SourceConfig.model_validate({
            "path": p, "format": fmt, "deployed_model": deployed_model, "product_context": product_context}))
    if not sources:
        raise ValueError("no sources: give log files as arguments or a run config with [[sources]]")
    return cfg, sources


def ingest(
    paths: list[Path] = typer.Argument(None, help="Log files (.jsonl, .json, .parquet, optionally .gz)."),
    config: Path = typer.Option(None, "--config", "-c", help="Run config whose sources to read."),
    fmt: str = typer.Option("auto", "--format", help=_FORMAT_HELP),
    quarantine_dir: Path = typer.Option(Path("quarantine"), "--quarantine-dir",
                                        help="Where unusable rows are written, one file per source."),
    deployed_model: str = typer.Option(None, "--deployed-model", help=_MODEL_HELP),
    product_context: str = typer.Option(None, "--product-context", help=_CONTEXT_HELP),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Read log files and report, per source, read = accepted + quarantined, conversations and
    eligible turns. Unusable rows go to the quarantine files with line and reason."""
    from deploysim.registry import Registry
    from deploysim.sources.reader import SourceReader

    with user_errors():
        _, sources = _sources(paths, config, fmt, deployed_model, product_context)
        formats = Registry.discover().formats
        results = []
        for src in sources:
            reader = SourceReader(src, quarantine_dir=quarantine_dir, formats=formats)
            for _ in reader:
                pass
            st = reader.stats
            results.append(st)
            if json_out:
                continue
            container = f"{st.container}{', gzip' if st.compression == 'gzip' else ''}"
            _say(f"{st.source}: read {st.read} = accepted {st.accepted} + quarantined {st.quarantined}  "
                 f"({st.format}, {container}; {st.conversations} conversations, "
                 f"{st.eligible_turns} eligible turns)")
            if st.quarantine_path:
                _say(f"  quarantine: {st.quarantine_path}")
                for q in st.examples[:3]:
                    _say(f"    line {q.line}: {q.reason}")
    if json_out:
        print_json([{"source": st.source, "format": st.format, "container": st.container,
                     "compression": st.compression, "read": st.read, "accepted": st.accepted,
                     "quarantined": st.quarantined, "conversations": st.conversations,
                     "eligible_turns": st.eligible_turns, "quarantine_path": st.quarantine_path,
                     "examples": [{"line": q.line, "reason": q.reason} for q in st.examples[:3]]}
                    for st in results])


def sample(
    paths: list[Path] = typer.Argument(None, help="Log files to sample from (added to the config's "
                                                  "sources)."),
    config: Path = typer.Option(None, "--config", "-c", help="Run config (its sources, sample settings "
                                                                "and run directory)."),
    run_dir: Path = typer.Option(None, "--run-dir", help="Run directory to write (default: run.dir of the "
                                                         "config, else ./run)."),
    n: int = typer.Option(None, "-n", "--n", min=1, help="Number of prefixes to draw."),
    seed: int = typer.Option(None, "--seed", help="Random seed (same seed + same input = same prefixes)."),
    stratify_by: str = typer.Option(None, "--stratify-by", help="Metadata field to stratify by "
                                                                "(product_context, language, ...)."),
    quota: list[str] = typer.Option(None, "--quota", help="Explicit stratum quota NAME=COUNT (repeatable)."),
    cap: int = typer.Option(None, "--cap-per-conversation", min=1, help="At most this many prefixes per "
                                                                        "conversation."),
    language: list[str] = typer.Option(None, "--language", help="Keep only these languages (repeatable)."),
    context: list[str] = typer.Option(None, "--context", help="Keep only these product contexts "
                                                              "(repeatable)."),
    min_turns: int = typer.Option(None, "--min-turns", min=1, help="Keep conversations with at least this "
                                                                   "many user turns."),
    max_turns: int = typer.Option(None, "--max-turns", min=1, help="Keep conversations with at most this "
                                                                   "many user turns."),
    include_non_text: bool = typer.Option(False, "--include-non-text", help="Also sample turns whose prefix "
                                                                            "holds images, audio or files."),
    fmt: str = typer.Option("auto", "--format", help=_FORMAT_HELP),
    deployed_model: str = typer.Option(None, "--deployed-model", help=_MODEL_HELP),
    product_context: str = typer.Option(None, "--product-context", help=_CONTEXT_HELP),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Draw prefixes uniformly over the eligible turns of all sources (a user message that the
    deployed model answered) into a run directory, with each prefix's real production response
    as a y_prod completion. Prints read = accepted + quarantined per source. The run file's
    [deidentify] section applies (on by default): prefixes are de-identified before they are
    stored."""
    from deploysim.assemble import Options
    from deploysim.cli.common import run_stages
    from deploysim.config import RunConfig
    from deploysim.sample.config import SampleConfig
    from deploysim.sample.sampler import SampleReport

    with user_errors():
        cfg, sources = _sources(paths, config, fmt, deployed_model, product_context)
        base = cfg.sample.model_dump() if cfg is not None else {}
        overrides = {"n": n, "seed": seed, "stratify_by": stratify_by, "cap_per_conversation": cap,
                     "languages": language or None, "contexts": context or None, "min_turns": min_turns,
                     "max_turns": max_turns, "quotas": _quotas(quota) if quota else None}
        base.update({k: v for k, v in overrides.items() if v is not None})
        if include_non_text:
            base["text_only"] = False
        sample_cfg = SampleConfig.model_validate(base)
        target = run_dir or (cfg.run.dir if cfg is not None else Path("run"))
        run_cfg = cfg or RunConfig()
        run_cfg = run_cfg.model_copy(update={"sources": sources, "sample": sample_cfg,
                                             "run": run_cfg.run.model_copy(update={"dir": target})})
        [stage_report] = run_stages(run_cfg, ["sample"], Options(), quiet=True)
        report = SampleReport.model_validate(stage_report.data)
    if json_out:
        print_json({"run_dir": str(target), "report": report})
        return
    for line, src in zip(report.source_lines(), report.sources, strict=True):
        where = src.get("quarantine_path")
        _say(line + (f"  (quarantine: {where})" if where else ""))
    _say(f"sampled {report.sampled} of {report.requested} requested prefixes from "
                  f"{report.population} candidate turns ({report.eligible_turns} eligible turns before "
                  f"filters), seed {report.seed} -> {target}")
    for name, s in report.strata.items():
        _say(f"  {report.stratify_by}={name}: {s.sampled}/{s.quota} from {s.population} turns")
    if report.sampled < report.requested:
        _say("  note: fewer candidate turns than requested; every candidate was taken")


def _quotas(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        name, sep, count = item.rpartition("=")
        if not sep or not name or not count.strip().isdigit():
            raise ValueError(f"--quota {item!r}: expected NAME=COUNT")
        out[name] = int(count)
    return out


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.command("sample")(sample)
