"""``deploysim forecast`` (lock a forecast), ``forecast verify`` and ``forecast show``."""

from __future__ import annotations

from pathlib import Path

import click
import typer
from rich.table import Table
from typer.core import TyperGroup

from deploysim.cli.common import console, open_run, user_errors
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


def forecast_table(payload: ForecastPayload) -> Table:
    table = Table(title=f"forecast {payload.run_id} ({payload.created_at}, {payload.interval_level:.0%} "
                        "predictive intervals)")
    for col in ("category", "method", "rate", "interval", "direction", "× vs Y prod", "basis k/n"):
        table.add_column(col, justify="right" if col not in ("category", "method") else "left")
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
         out: Path | None = typer.Option(None, help="Forecast file to write (default RUN_DIR/forecast.json).")
         ) -> None:
    """Write the locked forecast file (content hash + UTC timestamp); never rewrites one."""
    from deploysim.forecast.config import ForecastConfig
    from deploysim.forecast.stage import forecast_run

    with user_errors():
        store, cfg = open_run(run)
        with store:
            outcome = forecast_run(store, cfg.forecast if cfg else ForecastConfig(), out=out)
    console.print(forecast_table(outcome.payload))
    for line in discrepancy_lines(outcome.payload):
        console.print(line)
    verb = "locked" if outcome.created else "already locked (verified, not rewritten)"
    console.print(f"forecast {verb}: [bold]{outcome.path}[/] sha256 {outcome.content_hash}")


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
def show(path: Path = typer.Argument(..., help="A forecast file.")) -> None:
    """Print a forecast file's table (after verifying it)."""
    from deploysim.forecast.locked import verify

    with user_errors():
        payload, _ = verify(path)
    console.print(forecast_table(payload))
    for line in discrepancy_lines(payload):
        console.print(line)


def register(app: typer.Typer) -> None:
    app.add_typer(forecast_app, name="forecast")
