"""``deploysim run``, ``deploysim report``, ``deploysim export`` and ``deploysim demo``."""

from __future__ import annotations

from pathlib import Path

import typer

from deploysim.cli.common import console, log_line, open_run, user_errors


def run(
    config: Path = typer.Argument(..., help="The run file (TOML)."),
    stage: list[str] = typer.Option(None, "--stage", "-s",
                                    help="Run only these stages (repeatable): sample, simulate, challenge, "
                                         "grade, estimate, forecast, report."),
    budget: float | None = typer.Option(None, "--budget", help="Spend cap in USD for this invocation."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Run every configured stage in order; re-running resumes a partial run without redoing work."""
    from deploysim.cli.stats_cmd import print_estimates
    from deploysim.config import load_config
    from deploysim.pipeline import run_pipeline

    with user_errors():
        cfg = load_config(config)
        results = run_pipeline(cfg, stages=stage or None, progress=progress, budget_usd=budget, log=log_line)
    for result in results:
        if result.stage == "estimate" and "report" in result.data:
            print_estimates(result.data["report"], cfg.estimate, f"Estimates — {cfg.run.dir}")
    console.print(f"run directory: [bold]{cfg.run.dir}[/]")


def report(run_target: Path = typer.Argument(..., metavar="RUN", help="Run directory or run file."),
           out: Path | None = typer.Option(None, help="Folder for report.html and report.json "
                                                      "(default: the run directory)."),
           transcripts: int = typer.Option(150, help="How many prefixes the transcript browser shows.")
           ) -> None:
    """Write the self-contained HTML report and report.json from the run database."""
    from deploysim.report.html import write_report

    with user_errors():
        store, _ = open_run(run_target)
        with store:
            files = write_report(store, out, transcript_limit=transcripts)
    console.print(f"report: [bold]{files.html}[/]  data: {files.json}")


def export(run_target: Path = typer.Argument(..., metavar="RUN", help="Run directory or run file."),
           out: Path | None = typer.Option(None, help="Output folder (default RUN_DIR/export)."),
           fmt: list[str] = typer.Option(["parquet", "jsonl"], "--format", "-f",
                                         help="parquet and/or jsonl (repeatable).")) -> None:
    """Export every table of a run to Parquet and/or JSONL, with a manifest stating the privacy policy."""
    from deploysim.report.export import export_run

    with user_errors():
        store, _ = open_run(run_target)
        with store:
            result = export_run(store, out, formats=tuple(fmt))
    for table, rows in result.rows.items():
        console.print(f"{table:<20} {rows:>9} rows")
    console.print(f"written to [bold]{result.out_dir}[/]")


def demo(out: Path = typer.Option(Path("demo-run"), help="Folder for the demo's logs, run and report."),
         conversations: int = typer.Option(3000, help="Conversations in the synthetic production log."),
         prefixes: int = typer.Option(80, help="Prefixes to sample and simulate."),
         max_tokens: int = typer.Option(64, help="Max tokens per embedded-model response."),
         seed: int = typer.Option(7, help="Seed of the corpus and the sample."),
         progress: bool = typer.Option(True, help="Show progress bars.")) -> None:
    """The whole pipeline offline on a synthetic log with the embedded model: sample, de-identify,
    simulate X→Y and Y→Y, grade, estimate, lock a forecast, release, validate, report."""
    from deploysim.demo.pipeline import DemoSettings, run_demo

    with user_errors():
        settings = DemoSettings(out=out, conversations=conversations, prefixes=prefixes,
                                max_tokens=max_tokens, seed=seed)
        result = run_demo(settings, progress=progress, log=log_line)
    from deploysim.cli.stats_cmd import print_estimates
    from deploysim.cli.validate_cmd import scorecard_tables
    from deploysim.estimate.config import EstimateConfig

    if result.estimates is not None:
        print_estimates(result.estimates, EstimateConfig(), "Simulated deployment: per-category estimates")
    for table in scorecard_tables(result.scorecard):
        console.print(table)
    console.print(f"\n[bold green]demo finished[/] — open [bold]{result.report}[/] in a browser")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("report")(report)
    app.command("export")(export)
    app.command("demo")(demo)
