"""``deploysim validate``: score a locked forecast against X's real production traffic."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from deploysim.cli.common import JSON_HELP, console, finish, load_target, print_json, run_stages, user_errors
from deploysim.cli.tables import PlainTable, emit
from deploysim.validate.scorecard import Scorecard


def scorecard_tables(card: Scorecard) -> list[PlainTable]:
    coverage = f"{card.interval_level:.0%} coverage"
    summary = PlainTable(f"scorecard (forecast {card.forecast_hash[:12]}; "
                         f"moved = changed ≥ {card.move_factor:g}x "
                         f"vs Y production, {1 - card.move_alpha:.0%} ratio interval excluding 1)",
                         ["method", "categories", "moved", "directional acc. (95% CI)", "p vs ½",
                          "median sym. err",
                          "max sym. err", "NLL", "NLL regret", coverage, "outside funnel"],
                         right={"categories", "moved", "median sym. err", "max sym. err", "NLL", "NLL regret",
                                coverage, "outside funnel"})
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
    rows = PlainTable("per category", ["category", "method", "forecast", "realised k/n", "predictive k",
                                       "move",
                                       "dir ok", "sym. err", "funnel 90%", "NLL regret", "covered"],
                      right={"forecast", "realised k/n", "predictive k", "sym. err", "funnel 90%",
                             "NLL regret"},
                      keys=2)
    arrows = {1: "↑", -1: "↓", 0: "="}
    for r in card.rows:
        ok = "–" if r.direction_correct is None else ("yes" if r.direction_correct else "no")
        interval = "–" if r.count_interval is None else f"{r.count_interval[0]}–{r.count_interval[1]}"
        rows.add_row(r.category, r.method, f"{r.forecast_rate:.3%}", f"{r.k_x}/{r.n_x}", interval,
                     arrows[r.realised_move], ok, f"{r.sym_error:.2f}x", f"{r.funnel_upper:.2f}x",
                     f"{r.nll_regret:.2f}", "yes" if r.covered else "no")
    return [summary, rows]


def print_scorecard(card: Scorecard) -> None:
    for table in scorecard_tables(card):
        emit(console, table)
    if card.missing:
        console.print(f"no realised counts for: {', '.join(card.missing)}", markup=False, soft_wrap=True)


def validate(
    forecast: Path = typer.Option(None, "--forecast", "-f", help="The locked forecast file "
                                  "(default: validate.forecast, else the run's forecast)."),
    production: list[Path] = typer.Option(None, "--production", "-p",
                                          help="X's production logs (any reader format); repeatable "
                                               "(default: validate.production)."),
    run: Path = typer.Option(..., "--run", help="The run directory (or run file) the forecast came from."),
    n: int | None = typer.Option(None, help="Sample this many eligible turns of X's traffic "
                                            "(default: validate.n, else the run's sample size)."),
    seed: int | None = typer.Option(None, help="Seed of the release-window sample and the funnel band."),
    progress: bool = typer.Option(True, help="Show progress bars."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Grade X's production traffic with the run's frozen graders and score the forecast and both
    baselines: directional accuracy, symmetric multiplicative error, NLL and regret, coverage, funnel."""
    from deploysim.assemble import VALIDATE_STAGES, Options
    from deploysim.sources.config import SourceConfig

    with user_errors():
        cfg = base = load_target(run)
        v = cfg.validate_.model_copy()
        if production:
            v.production = [SourceConfig(path=p, name=f"release:{p.name}") for p in production]
        if forecast is not None:
            v.forecast = forecast
        if n is not None:
            v.n = n
        if seed is not None:
            v.seed = seed
        if not v.production:
            raise ValueError("no production logs of the candidate: pass --production FILE or set "
                             "[validate] production in the run file")
        cfg = cfg.model_copy(update={"validate_": v})
        reports = run_stages(cfg, VALIDATE_STAGES, Options(progress=progress and not json_out),
                             quiet=json_out, base=base)
    outcome = next((r.data["outcome"] for r in reports if r.stage == "validate"), None)
    if json_out:
        print_json({"stages": [{"stage": r.stage, "status": r.status, "detail": r.detail} for r in reports],
                    "scorecard": outcome.scorecard if outcome else None})
    elif outcome is not None:
        print_scorecard(outcome.scorecard)
        console.print(f"scorecard written to {outcome.path}", markup=False)
    finish(reports)


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
