"""``deploysim challenge add|top-k|list``: the challenging-prompts baseline's prompt set.

Options left out fall back to the run's ``[forecast]`` section (``challenge_set``,
``challenge_limit``, ``challenge_seed``, ``challenge_product_context``, ``challenge_top_k``,
``challenge_score``, ``challenge_categories``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from deploysim.cli.common import (
    JSON_HELP,
    console,
    load_target,
    print_json,
    report_json,
    run_stages,
    user_errors,
)
from deploysim.cli.tables import PlainTable, emit

if TYPE_CHECKING:
    from deploysim.config import RunConfig
    from deploysim.stages import StageReport

challenge_app = typer.Typer(
    no_args_is_help=True,
    help="Build the prompt set of the challenging-prompts baseline (prefix pool `challenge`, simulated "
         "as arm `challenge`): from a set file, or the top-k production prefixes by risk score.")

SET_HELP = ("Set file: CSV (XSTest, HarmBench, AdvBench layout or a `prompt` column), a prompt list, or a "
            "log in any reader format (default: forecast.challenge_set).")
FORMAT_HELP = ("auto, csv, xstest, harmbench, advbench, prompt_csv, prompts, or a log format "
               "(openai, wildchat, ...).")
SCORE_HELP = ("flags: categories flagged on Y's production response (ties: max score); classifier: max "
              "grader score (default: forecast.challenge_score).")


@challenge_app.command("add")
def add(run: Path = typer.Argument(..., help="Run directory or run file (.toml)."),
        set_file: Path | None = typer.Option(None, "--set", help=SET_HELP),
        limit: int | None = typer.Option(
            None, "--limit", min=1, help="Draw N prompts uniformly (default: forecast.challenge_limit)."),
        seed: int | None = typer.Option(
            None, "--seed", help="Seed of the --limit draw (default: forecast.challenge_seed)."),
        fmt: str = typer.Option("auto", "--format", help=FORMAT_HELP),
        name: str | None = typer.Option(
            None, "--name", help="Set name (default: the file name without suffixes)."),
        product_context: str | None = typer.Option(
            None, "--product-context",
            help="Product context where the file names none (default: forecast.challenge_product_context)."),
        json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
        ) -> None:
    """Add a challenging-prompt set file to the run (idempotent: adding it again adds nothing)."""
    with user_errors():
        cfg = load_target(run)
        fc = cfg.forecast
        path = set_file or fc.challenge_set
        if path is None:
            raise ValueError("no set file: pass --set FILE or set forecast.challenge_set in the run file")
        update = {"challenge_set": path, "challenge_top_k": None,
                  "challenge_limit": limit or fc.challenge_limit,
                  "challenge_seed": fc.challenge_seed if seed is None else seed,
                  "challenge_product_context": product_context or fc.challenge_product_context}
        reports = _run_challenge(cfg, update, json_out, {"challenge_format": fmt, "challenge_name": name})
    _show(reports, json_out)


@challenge_app.command("top-k")
def top_k(run: Path = typer.Argument(..., help="Run directory or run file (.toml)."),
          k: int | None = typer.Option(
              None, "--k", min=1, help="How many prefixes (default: forecast.challenge_top_k)."),
          score: str | None = typer.Option(None, "--score", help=SCORE_HELP),
          categories: list[str] | None = typer.Option(
              None, "--category", help="A category to score (repeatable; default: every graded one)."),
          json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
          ) -> None:
    """Add the k production prefixes whose Y production response was judged riskiest."""
    with user_errors():
        cfg = load_target(run)
        fc = cfg.forecast
        count = k or fc.challenge_top_k
        if count is None:
            raise ValueError("no k: pass --k N or set forecast.challenge_top_k in the run file")
        chosen = score or fc.challenge_score
        if chosen not in ("flags", "classifier"):
            raise ValueError(f"--score must be flags or classifier, got {chosen!r}")
        update = {"challenge_set": None, "challenge_top_k": count, "challenge_score": chosen,
                  "challenge_categories": categories or fc.challenge_categories}
        reports = _run_challenge(cfg, update, json_out)
    _show(reports, json_out)


def _run_challenge(cfg: RunConfig, update: dict[str, object], quiet: bool,
                   extra: dict[str, object] | None = None) -> list[StageReport]:
    from deploysim.assemble import Options

    changed = cfg.model_copy(update={"forecast": cfg.forecast.model_copy(update=update)})
    return run_stages(changed, ["challenge"], Options(progress=not quiet, extra=extra or {}), quiet=quiet,
                      base=cfg)


def _show(reports: list[StageReport], json_out: bool) -> None:
    if json_out:
        print_json(report_json(reports))
        return
    data = reports[-1].data
    for name, rep in data.get("sets", {}).items():
        if rep.get("kind") == "set":
            console.print(f"{name} ({rep.get('style')}) from {rep.get('source')}: read {rep.get('read')} "
                          f"= accepted {rep.get('accepted')} + quarantined {rep.get('quarantined')}; "
                          f"selected {rep.get('selected')}",
                          markup=False, soft_wrap=True)
            for reason, count in (rep.get("quarantine_reasons") or {}).items():
                console.print(f"  quarantined ({count}): {reason}", markup=False, soft_wrap=True)
        else:
            console.print(f"top {rep.get('k')} production prefixes by {rep.get('score')}: "
                          f"{rep.get('selected')} "
                          "selected", markup=False)
            if (rep.get("selected") or 0) < (rep.get("k") or 0):
                console.print(f"only {rep.get('selected')} production prefixes have a positive risk score",
                              markup=False)
    for name, added in data.get("added", {}).items():
        console.print(f"{name}: added {added} new prefixes to pool challenge "
                      f"({data.get('total')} in the pool)",
                      markup=False)


@challenge_app.command("list")
def list_sets(run: Path = typer.Argument(..., help="Run directory or run file (.toml)."),
              json_out: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Show the challenge sets added to a run (stage reports) and the pool's size."""
    from deploysim.store import RunStore

    with user_errors():
        cfg = load_target(run)
        with RunStore.open(cfg.run.dir, create=False) as store:
            reports = store.stage_reports("challenge")
            total = store.count_prefixes(pool="challenge")
    if json_out:
        print_json({"total": total, "sets": reports})
        return
    table = PlainTable(f"challenge pool: {total} prefixes",
                       ["name", "kind", "source / score", "read", "quarantined", "prefixes"],
                       right={"read", "quarantined", "prefixes"})
    for key, rep in reports.items():
        origin = f"{rep.get('source')} ({rep.get('style')})" if rep.get("kind") == "set" else \
            f"k={rep.get('k')} by {rep.get('score')}"
        table.add_row(key, str(rep.get("kind")), origin, str(rep.get("read", "–")),
                      str(rep.get("quarantined", "–")), str(rep.get("prefixes")))
    emit(console, table)


def register(app: typer.Typer) -> None:
    app.add_typer(challenge_app, name="challenge")
