"""``deploysim validate``: score a locked forecast against X's real production traffic."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.table import Table

from deploysim.cli.common import console, open_run, user_errors
from deploysim.validate.scorecard import Scorecard


def scorecard_tables(card: Scorecard) -> list[Table]:
    summary = Table(title=f"scorecard (forecast {card.forecast_hash[:12]}; moved = changed ≥ "
                          f"{card.move_factor:g}x vs Y production, {1 - card.move_alpha:.0%} ratio interval "
                          "excluding 1)")
    for col in ("method", "categories", "moved", "directional acc. (95% CI)", "p vs ½", "median sym. err",
                "max sym. err", "NLL", "NLL regret", f"{card.interval_level:.0%} coverage", "outside funnel"):
        summary.add_column(col, justify="left" if col == "method" else "right")
    for s in card.summary.values():
        if not s.direction_claim:
            acc, p = "n/a", "n/a"
        elif math.isnan(s.directional_accuracy) or s.directional_interval is None:
            acc, p = "–", "–"
        else:
            lo, hi = s.directional_interval
            acc = f"{s.directional_correct}/{s.moved} = {s.directional_accuracy:.0%} ({lo:.0%}–{hi:.0%})"
            p = f"{s.directional_p_value:.3g}"
        summary.add_row(s.method, str(s.categories), str(s.moved), acc, p, f"{s.median_sym_error:.2f}x",
                        f"{s.max_sym_error:.2f}x", f"{s.total_nll:.1f}", f"{s.total_nll_regret:.1f}",
                        f"{s.coverage:.0%}", str(s.outside_funnel))
    rows = Table(title="per category")
    for col in ("category", "method", "forecast", "realised k/n", "predictive k", "move", "dir ok",
                "sym. err", "funnel 90%", "NLL regret", "covered"):
        rows.add_column(col, justify="left" if col in ("category", "method") else "right")
    arrows = {1: "↑", -1: "↓", 0: "="}
    for r in card.rows:
        ok = "–" if r.direction_correct is None else ("yes" if r.direction_correct else "no")
        interval = "–" if r.count_interval is None else f"{r.count_interval[0]}–{r.count_interval[1]}"
        rows.add_row(r.category, r.method, f"{r.forecast_rate:.3%}", f"{r.k_x}/{r.n_x}", interval,
                     arrows[r.realised_move], ok, f"{r.sym_error:.2f}x", f"{r.funnel_upper:.2f}x",
                     f"{r.nll_regret:.2f}", "yes" if r.covered else "no")
    return [summary, rows]


def validate(
    forecast: Path = typer.Option(..., "--forecast", "-f", help="The locked forecast file."),
    production: list[Path] = typer.Option(..., "--production", "-p",
                                          help="X's production logs (any reader format); repeatable."),
    run: Path = typer.Option(..., "--run", help="The run directory (or run file) the forecast came from."),
    n: int | None = typer.Option(None, help="Sample this many eligible turns of X's traffic "
                                            "(default: the run's sample size)."),
    seed: int = typer.Option(0, help="Seed of the release-window sample and the funnel band."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Grade X's production traffic with the run's frozen graders and score the forecast and both
    baselines: directional accuracy, symmetric multiplicative error, NLL and regret, coverage, funnel."""
    from deploysim.config import RunConfig
    from deploysim.pipeline import prefix_transform
    from deploysim.sample.config import SampleConfig
    from deploysim.sources.config import SourceConfig
    from deploysim.validate.stage import validate_run

    with user_errors():
        store, cfg = open_run(run)
        cfg = cfg or RunConfig()
        with store:
            base = cfg.sample.model_copy(update={"seed": seed}) if cfg else SampleConfig(seed=seed)
            sample_cfg = base.model_copy(update={"n": n}) if n else base
            sources = [SourceConfig(path=p, name=f"release:{p.name}") for p in production]
            outcome = validate_run(store, cfg, forecast, sources, sample_cfg=sample_cfg,
                                   transform=prefix_transform(cfg, store), progress=progress, seed=seed)
    for table in scorecard_tables(outcome.scorecard):
        console.print(table)
    if outcome.scorecard.missing:
        console.print(f"[yellow]no realised counts for:[/] {', '.join(outcome.scorecard.missing)}")
    console.print(f"scorecard written to [bold]{outcome.path}[/]")


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
