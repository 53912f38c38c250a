"""``deploysim forecast`` (lock a forecast), ``forecast verify`` and ``forecast show``."""

from __future__ import annotations

from pathlib import Path

import click
import typer
from typer.core import TyperGroup

from deploysim.cli.common import (
    JSON_HELP,
    console,
    err_console,
    load_target,
    print_json,
    run_stages,
    user_errors,
)
from deploysim.cli.tables import PlainTable, emit
from deploysim.forecast.model import ForecastPayload


class _LockByDefault(TyperGroup):
    """``deploysim forecast RUN`` means ``deploysim forecast lock RUN``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["lock", *args]
        return super().parse_args(ctx, args)


forecast_app = typer.Typer(cls=_LockByDefault, no_args_is_help=True,
                           help="Lock a forecast from a run's estimates (`deploysim forecast RUN`); "
                                "verify or show a forecast file.")


def forecast_table(payload: ForecastPayload) -> PlainTable:
    table = PlainTable(f"forecast {payload.run_id} ({payload.created_at}, "
                       f"{payload.interval_level:.0%} predictive intervals)",
                       ["category", "method", "rate", "interval", "direction", "× vs Y prod", "basis k/n"],
                       right={"rate", "interval", "× vs Y prod"}, keys=2)
    arrows = {1: "↑", -1: "↓", 0: "="}
    for cat in payload.categories:
        for name, f in cat.methods.items():
            ratio = "–" if f.ratio_vs_y_prod is None else f"{f.ratio_vs_y_prod:.2f}"
            heading = "n/a" if f.direction is None else f"{arrows[f.direction]} vs {f.reference}"
            basis = ", ".join(f"{role} {c.k}/{c.n}" for role, c in f.basis.items())
            table.add_row(cat.category, f"{name} ({f.model})", f"{f.rate:.4%}",
                          f"{f.interval[0]:.4%}–{f.interval[1]:.4%}", heading, ratio, basis)
    return table


def discrepancy_lines(payload: ForecastPayload) -> list[str]:
    """How each forecast model's simulation-to-production discrepancy was set."""
    return [f"discrepancy {d.model}: log-scale variance E τ² = {d.variance:.3g} ({d.description})"
            for d in payload.discrepancy.values()]


@forecast_app.command("lock")
def lock(run: Path = typer.Argument(..., help="Run directory or run file (.toml)."),
         out: Path | None = typer.Option(None,
                                         help="Forecast file to write (default RUN_DIR/forecast.json)."),
         new_version: bool = typer.Option(False, "--new-version",
                                          help="When the locked forecast is stale, lock the next version "
                                               "(forecast.v2.json, ...); the old one is kept."),
         allow_incomplete: bool = typer.Option(False, "--allow-incomplete",
                                               help="Lock even if planned work is pending or failed."),
         json_out: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Write the locked forecast file (content hash + UTC timestamp); never rewrites one. Exit 4
    when the run is not complete enough to lock (see --allow-incomplete)."""
    from deploysim.assemble import Options
    from deploysim.forecast.locked import verify

    with user_errors():
        cfg = base = load_target(run)
        forced = allow_incomplete or cfg.forecast.allow_incomplete
        cfg = cfg.model_copy(update={"forecast": cfg.forecast.model_copy(
            update={"enabled": True, "allow_incomplete": forced})})
        reports = run_stages(cfg, ["forecast"], Options(extra={"forecast_out": out,
                                                               "new_version": new_version}),
                             quiet=json_out, base=base)
        data = reports[-1].data
        if reports[-1].status == "incomplete":
            err_console.print(reports[-1].detail, markup=False, soft_wrap=True)
            raise typer.Exit(4)
        if "path" not in data:
            raise ValueError(f"no forecast locked: {reports[-1].detail}")
        payload, digest = verify(Path(data["path"]))
    if json_out:
        print_json({"path": data["path"], "content_hash": digest, "created": data["created"],
                    "stale": data.get("stale", False), "payload": payload})
        return
    emit(console, forecast_table(payload))
    for line in discrepancy_lines(payload):
        console.print(line, markup=False, soft_wrap=True)
    verb = "locked" if data["created"] else "already locked (verified, not rewritten)"
    console.print(f"forecast {verb}: {data['path']} sha256 {digest}", markup=False)
    if data.get("stale"):
        console.print("stale: the run has graded more items since this forecast was locked; "
                      "`deploysim forecast lock RUN --new-version` locks a new version", markup=False)


@forecast_app.command("verify")
def verify_cmd(path: Path = typer.Argument(..., help="A forecast file.")) -> None:
    """Check that a forecast file's content still matches its hash (exit 1 if not)."""
    from deploysim.forecast.locked import ForecastIntegrityError, verify

    try:
        payload, digest = verify(path)
    except (ForecastIntegrityError, FileNotFoundError) as err:
        console.print(f"[bold red]FAILED[/] {err}")
        raise typer.Exit(1) from None
    console.print(f"[green]OK[/] {path}: sha256 {digest}, run {payload.run_id}, "
                  f"created {payload.created_at}, {len(payload.categories)} categories")


@forecast_app.command("show")
def show(path: Path = typer.Argument(..., help="A forecast file."),
         json_out: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Print a forecast file's table (after verifying it)."""
    from deploysim.forecast.locked import verify

    with user_errors():
        payload, digest = verify(path)
    if json_out:
        print_json({"path": str(path), "content_hash": digest, "payload": payload})
    else:
        emit(console, forecast_table(payload))
        for line in discrepancy_lines(payload):
            console.print(line, markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(forecast_app, name="forecast")
