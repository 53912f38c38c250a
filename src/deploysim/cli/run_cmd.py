"""``deploysim run``, ``check``, ``report``, ``export`` and ``demo``. Every command that runs a
stage goes through the assembler (:mod:`deploysim.assemble`)."""

from __future__ import annotations

from pathlib import Path

import typer

from deploysim.cli.common import (
    JSON_HELP,
    console,
    finish,
    load_target,
    print_json,
    report_json,
    run_stages,
    user_errors,
)


def run(
    config: Path = typer.Argument(..., help="The run file (TOML)."),
    stage: list[str] = typer.Option(None, "--stage", "-s",
                                    help="Run only these stages (repeatable): sample, challenge, simulate, "
                                         "grade, estimate, forecast, report."),
    budget: float | None = typer.Option(None, "--budget", help="Spend cap in USD for this invocation."),
    allow_incomplete: bool = typer.Option(False, "--allow-incomplete",
                                          help="Lock the forecast even if planned work is pending or failed "
                                               "(the forecast file says so)."),
    progress: bool = typer.Option(True, help="Show progress bars."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Run every configured stage in order; re-running resumes a partial run without redoing work.
    Exit code 0 when complete, 2 on a configuration error, 3 when a budget stopped it, 4 when
    planned work is incomplete (the forecast is then not locked), 5 when the run is in use."""
    from deploysim.assemble import RUN_STAGES, Options
    from deploysim.cli.stats_cmd import print_estimates

    with user_errors():
        cfg = load_target(config)
        if allow_incomplete:
            forecast = cfg.forecast.model_copy(update={"allow_incomplete": True})
            cfg = cfg.model_copy(update={"forecast": forecast})
        reports = run_stages(cfg, stage or RUN_STAGES, Options(progress=progress and not json_out,
                                                               budget_usd=budget), quiet=json_out)
    if json_out:
        print_json(report_json(reports))
    else:
        for r in reports:
            if r.stage == "estimate" and "report" in r.data:
                print_estimates(r.data["report"], cfg.estimate, f"Estimates — {cfg.run.dir}")
        console.print(f"run directory: [bold]{cfg.run.dir}[/]")
    finish(reports)


def check(config: Path = typer.Argument(..., help="The run file (TOML)."),
          json_out: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Check a run file without running anything: arms, models and providers, endpoint URLs,
    API-key variables, source and taxonomy files, formats, categories, graders, the judge.
    Every problem is listed with its key; exit 2 if there is any."""
    from deploysim.assemble import RUN_STAGES
    from deploysim.check import problems
    from deploysim.registry import Registry

    with user_errors():
        cfg = load_target(config)
        found = problems(cfg, Registry.discover(), stages=RUN_STAGES)
    if json_out:
        print_json({"file": str(config), "ok": not found, "problems": found})
    elif found:
        console.print(f"{config}: {len(found)} problem{'s' if len(found) != 1 else ''}", markup=False)
        for p in found:
            console.print(f"  {p}", markup=False, soft_wrap=True)
    else:
        console.print(f"{config}: ok", markup=False)
    if found:
        raise typer.Exit(2)


def report(run_target: Path = typer.Argument(..., metavar="RUN", help="Run directory or run file."),
           out: Path | None = typer.Option(None, help="Folder for report.html and its JSON "
                                                      "(default: the run directory)."),
           transcripts: int = typer.Option(150, help="How many prefixes the transcript browser shows."),
           json_out: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Write the self-contained HTML report from the run database."""
    from deploysim.assemble import Options

    with user_errors():
        cfg = base = load_target(run_target)
        cfg = cfg.model_copy(update={"outputs": cfg.outputs.model_copy(update={"report": True,
                                                                               "export": []})})
        reports = run_stages(cfg, ["report"], Options(extra={"report_out": out, "transcripts": transcripts}),
                             quiet=json_out, base=base)
    if json_out:
        print_json(report_json(reports))
    else:
        data = reports[-1].data
        console.print(f"report: [bold]{data.get('html')}[/]  data: {data.get('json')}")


def export(run_target: Path = typer.Argument(..., metavar="RUN", help="Run directory or run file."),
           fmt: list[str] = typer.Option(["parquet", "jsonl"], "--format", "-f",
                                         help="parquet and/or jsonl (repeatable)."),
           json_out: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Export every table of a run to Parquet and/or JSONL (RUN_DIR/export), with a manifest
    stating the privacy policy."""
    from deploysim.assemble import Options
    from deploysim.config import OutputConfig

    with user_errors():
        cfg = base = load_target(run_target)
        cfg = cfg.model_copy(update={"outputs": OutputConfig.model_validate({"report": False,
                                                                             "export": fmt})})
        reports = run_stages(cfg, ["report"], Options(), quiet=json_out, base=base)
    if json_out:
        print_json(report_json(reports))
    else:
        console.print(f"written to [bold]{reports[-1].data.get('export')}[/]")


def demo(out: Path = typer.Option(Path("demo-run"), help="Folder for the demo's logs, run and report."),
         conversations: int = typer.Option(3000, help="Conversations in the synthetic production log."),
         prefixes: int = typer.Option(80, help="Prefixes to sample and simulate."),
         max_tokens: int = typer.Option(64, help="Max tokens per embedded-model response."),
         seed: int = typer.Option(7, help="Seed of the corpus and the sample."),
         progress: bool = typer.Option(True, help="Show progress bars.")) -> None:
    """The whole pipeline offline on a synthetic log with the embedded model: sample, de-identify,
    simulate X→Y and Y→Y, grade, estimate, lock a forecast, release, validate, report."""
    from deploysim.cli.common import log_line
    from deploysim.demo.pipeline import DemoSettings, run_demo

    with user_errors():
        settings = DemoSettings(out=out, conversations=conversations, prefixes=prefixes,
                                max_tokens=max_tokens, seed=seed)
        result = run_demo(settings, progress=progress, log=log_line)
    from deploysim.cli.stats_cmd import print_estimates
    from deploysim.cli.validate_cmd import print_scorecard
    from deploysim.estimate.config import EstimateConfig

    if result.estimates is not None:
        print_estimates(result.estimates, EstimateConfig(), "Simulated deployment: per-category estimates")
    print_scorecard(result.scorecard)
    console.print(f"\n[bold green]demo finished[/] — open [bold]{result.report}[/] in a browser")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("check")(check)
    app.command("report")(report)
    app.command("export")(export)
    app.command("demo")(demo)
