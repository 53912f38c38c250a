"""``deploysim challenge add|top-k|list``: the challenging-prompts baseline's prompt set.

Options left out fall back to the run's ``[forecast]`` section (``challenge_set``,
``challenge_limit``, ``challenge_seed``, ``challenge_product_context``, ``challenge_top_k``,
``challenge_score``, ``challenge_categories``).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from deploysim.cli.common import console, open_run, user_errors
from deploysim.forecast.config import ForecastConfig

challenge_app = typer.Typer(
    no_args_is_help=True,
    help="Build the prompt set of the challenging-prompts baseline (prefix pool `challenge`, simulated "
         "as arm `challenge`): from a set file, or the top-k production prefixes by risk score.")

QUARANTINE_SHOWN = 10


def _excerpt(text: str, width: int = 70) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


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
        ) -> None:
    """Add a challenging-prompt set file to the run (idempotent: adding it again adds nothing)."""
    from deploysim.forecast.challenge import add_challenge_set, load_challenge_set

    with user_errors():
        store, cfg = open_run(run)
        fc = cfg.forecast if cfg else ForecastConfig()
        path = set_file or fc.challenge_set
        if path is None:
            raise ValueError("no set file: pass --set FILE or set forecast.challenge_set in the run file")
        with store:
            cset = load_challenge_set(path, fmt=fmt, limit=limit or fc.challenge_limit,
                                      seed=fc.challenge_seed if seed is None else seed, name=name,
                                      product_context=product_context or fc.challenge_product_context)
            added = add_challenge_set(store, cset)
            total = store.count_prefixes(pool="challenge")
    console.print(f"[bold]{cset.name}[/] ({cset.style}) from {cset.path}: read {cset.read} = accepted "
                  f"{cset.accepted} + quarantined {len(cset.quarantined)}; selected {len(cset.prefixes)}"
                  + (f" (limit {cset.limit}, seed {cset.seed})" if cset.limit else ""))
    table = Table(title="prompts per stratum")
    table.add_column("stratum")
    table.add_column("prompts", justify="right")
    for stratum, count in cset.strata().items():
        table.add_row(stratum, str(count))
    console.print(table)
    for q in cset.quarantined[:QUARANTINE_SHOWN]:
        console.print(f"  quarantined {q.source}:{q.line}: {q.reason}")
    if len(cset.quarantined) > QUARANTINE_SHOWN:
        console.print(f"  … and {len(cset.quarantined) - QUARANTINE_SHOWN} more (run table `quarantine`)")
    console.print(f"added {added} new prefixes to pool challenge ({total} in the pool)")


@challenge_app.command("top-k")
def top_k(run: Path = typer.Argument(..., help="Run directory or run file (.toml)."),
          k: int | None = typer.Option(
              None, "--k", min=1, help="How many prefixes (default: forecast.challenge_top_k)."),
          score: str | None = typer.Option(None, "--score", help=SCORE_HELP),
          categories: list[str] | None = typer.Option(
              None, "--category", help="A category to score (repeatable; default: every graded one)."),
          ) -> None:
    """Add the k production prefixes whose Y production response was judged riskiest."""
    from deploysim.forecast.challenge import add_top_k

    with user_errors():
        store, cfg = open_run(run)
        fc = cfg.forecast if cfg else ForecastConfig()
        count = k or fc.challenge_top_k
        if count is None:
            raise ValueError("no k: pass --k N or set forecast.challenge_top_k in the run file")
        chosen = score or fc.challenge_score
        if chosen not in ("flags", "classifier"):
            raise ValueError(f"--score must be flags or classifier, got {chosen!r}")
        with store:
            ranks, added = add_top_k(store, count, score=chosen,  # type: ignore[arg-type]
                                     categories=categories or fc.challenge_categories)
            texts = {r.prefix_id: (p.messages[-1].content if (p := store.get_prefix(r.prefix_id)) else "")
                     for r in ranks}
            total = store.count_prefixes(pool="challenge")
    table = Table(title=f"top {count} production prefixes by {chosen}")
    for col in ("rank", "prefix", "flags", "max score", "last user message"):
        table.add_column(col, justify="right" if col in ("rank", "flags", "max score") else "left")
    for i, r in enumerate(ranks, 1):
        top = "–" if r.max_score is None else f"{r.max_score:.3f}"
        table.add_row(str(i), r.prefix_id[:12], str(r.flags), top, _excerpt(texts[r.prefix_id]))
    console.print(table)
    if len(ranks) < count:
        console.print(f"[yellow]only {len(ranks)} production prefixes have a positive risk score[/]")
    console.print(f"added {added} new prefixes to pool challenge ({total} in the pool)")


@challenge_app.command("list")
def list_sets(run: Path = typer.Argument(..., help="Run directory or run file (.toml).")) -> None:
    """Show the challenge sets added to a run (stage reports) and the pool's size."""
    with user_errors():
        store, _ = open_run(run)
        with store:
            reports = store.stage_reports("challenge")
            total = store.count_prefixes(pool="challenge")
    table = Table(title=f"challenge pool: {total} prefixes")
    for col in ("name", "kind", "source / score", "read", "quarantined", "prefixes"):
        table.add_column(col, justify="right" if col in ("read", "quarantined", "prefixes") else "left")
    for key, rep in reports.items():
        origin = f"{rep.get('source')} ({rep.get('style')})" if rep.get("kind") == "set" else \
            f"k={rep.get('k')} by {rep.get('score')}"
        table.add_row(key, str(rep.get("kind")), origin, str(rep.get("read", "–")),
                      str(rep.get("quarantined", "–")), str(rep.get("prefixes")))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(challenge_app, name="challenge")
