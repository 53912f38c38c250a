"""``deploysim grade`` and ``deploysim taxonomy list|show|validate``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from deploysim.cli.common import console, user_errors

if TYPE_CHECKING:
    from deploysim.config import RunConfig
    from deploysim.grade.stage import GradeReport
    from deploysim.store.db import RunStore

taxonomy_app = typer.Typer(help="List, show and validate taxonomy categories.", no_args_is_help=True)


def _load(target: Path) -> tuple[RunConfig, RunStore]:
    """A run config from a TOML file, or from a run directory (its stored ``config``, else defaults)."""
    from deploysim.config import RunConfig, load_config, parse_config
    from deploysim.store.db import RunStore

    if target.is_file():
        cfg = load_config(target)
        return cfg, RunStore.open(cfg.run.dir)
    store = RunStore.open(target, create=False)
    stored = store.get_meta("config")
    cfg = parse_config(stored, path=target / "run.sqlite") if isinstance(stored, dict) else RunConfig()
    return cfg, store


def summary_lines(report: GradeReport) -> list[str]:
    """Per category: its grader and, per arm, ok judgments / positives / errors (+ ungraded).
    Plain fixed-width text, so it reads the same in a terminal, a log and a CI job."""
    from deploysim.records import ARM_LABELS

    arms = list(report.completions)
    width = max([len(r.category) for r in report.categories] + [8]) + 2
    heads = [f"{ARM_LABELS.get(a, a)} (n={report.completions[a]})" for a in arms]
    cols = [max(len(h), 18) + 2 for h in heads]
    header = "category".ljust(width) + "grader".ljust(22) + "".join(h.ljust(c) for h, c in zip(heads, cols,
                                                                                               strict=True))
    lines = ["judgments per category and arm: ok / positive / errors", header]
    for r in report.categories:
        cells = []
        for arm, c in zip(arms, cols, strict=True):
            n = r.arms.get(arm)
            cell = "-" if n is None else f"{n.ok} / {n.positive} / {n.errors}" + (
                f" ({n.ungraded} left)" if n.ungraded else "")
            cells.append(cell.ljust(c))
        lines.append(r.category.ljust(width) + f"{r.kind} {r.grader_hash[:10]}".ljust(22) + "".join(cells))
    return lines


def grade(
    target: Path = typer.Argument(..., help="A run config (.toml) or an existing run directory."),
    mode: str = typer.Option(None, "--mode", help="auto | offline | judge (overrides grade.mode)."),
    category: list[str] = typer.Option(None, "--category", help="Grade only these categories (repeatable)."),
    arm: list[str] = typer.Option(None, "--arm", help="Grade only these arms (repeatable)."),
    judge: str = typer.Option(None, "--judge", help="Name of the models entry used as LLM judge."),
    concurrency: int = typer.Option(None, "--concurrency", min=1, help="Jobs in flight."),
    budget: float = typer.Option(None, "--budget", min=0.0, help="Spend cap in USD for judge calls."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not use the response cache for judge calls."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
) -> None:
    """Grade every completion and every production response of the run, for every category of
    the taxonomy, with each category's frozen grader. Resumable: only missing judgments are made."""
    from deploysim.grade.config import GradeConfig
    from deploysim.grade.stage import grade_run

    with user_errors():
        cfg, store = _load(target)
        with store:
            overrides = {"mode": mode, "categories": category or None, "arms": arm or None, "judge": judge,
                         "concurrency": concurrency, "cache": False if no_cache else None}
            base = (cfg.grade or GradeConfig()).model_dump()
            changed = {k: v for k, v in overrides.items() if v is not None}
            section = GradeConfig.model_validate({**base, **changed})
            if section.judge and section.judge not in cfg.models and section.judge != "embedded":
                raise ValueError(f"--judge {section.judge!r} names no model of the run config (known: "
                                 f"{', '.join(sorted(cfg.models)) or 'none defined'})")
            report = grade_run(store, cfg.model_copy(update={"grade": section}), progress=not no_progress,
                               budget_usd=budget)
    for line in summary_lines(report):
        console.print(line, markup=False, soft_wrap=True)
    errors = sum(r.errors_now for r in report.categories)
    console.print(f"graded {sum(r.graded_now for r in report.categories)} (category, completion) pairs now, "
                  f"{errors} errors; {report.judge_requests} judge requests, {report.judge_tokens:,} tokens, "
                  f"${report.judge_cost_usd:.4f}; {report.wall_s:.1f}s", soft_wrap=True)
    if report.stopped_reason:
        console.print(f"stopped: {report.stopped_reason}", markup=False)
        raise typer.Exit(3)


def _taxonomy(extra: list[Path] | None):  # type: ignore[no-untyped-def]
    from deploysim.grade.taxonomy import load_taxonomy

    return load_taxonomy(extra or [])


def taxonomy_list(
    extra: list[Path] = typer.Option(None, "--taxonomy", help="Extra category files or folders."),
) -> None:
    """List the categories: id, group, default and offline grader, and the file each came from."""
    with user_errors():
        tax = _taxonomy(extra)
    rows = [("id", "group", "default", "offline grader", "source")]
    for c in tax:
        offline = c.grader.offline + (f":{c.grader.classifier_head}" if c.grader.offline == "classifier"
                                      else f":{c.grader.rules}")
        rows.append((c.id, c.group, c.grader.default, offline, c.source))
    widths = [max(len(r[i]) for r in rows) + 2 for i in range(4)]
    console.print(f"{len(tax)} categories", soft_wrap=True)
    for r in rows:
        console.print("".join(v.ljust(w) for v, w in zip(r, widths, strict=False)) + r[4], markup=False,
                      soft_wrap=True)


def taxonomy_show(
    category_id: str = typer.Argument(..., help="Category id."),
    extra: list[Path] = typer.Option(None, "--taxonomy", help="Extra category files or folders."),
) -> None:
    """Show one category: definition, what counts, graders, the judge's output schema and, for
    the offline rule set, what it matches and its stated limits."""
    import orjson

    from deploysim.grade.judge import output_schema
    from deploysim.grade.rules import rule_set_for

    with user_errors():
        c = _taxonomy(extra)[category_id]
    lines = [f"{c.name} ({c.id}, {c.group}) from {c.source}", "", c.definition.strip(), "", "counts:",
             *(f"  - {x}" for x in c.counts), "does not count:", *(f"  - {x}" for x in c.does_not_count), "",
             f"grader: default {c.grader.default}, offline {c.grader.offline} (classifier head: "
             f"{c.grader.classifier_head or '-'}, rules: {c.grader.rules or '-'})",
             "judge output schema:", orjson.dumps(output_schema(c), option=orjson.OPT_INDENT_2).decode()]
    if c.grader.rules:
        rs = rule_set_for(c)
        lines += [f"rule set {rs.name}: {rs.summary}", f"limits: {rs.limits}"]
    for line in lines:  # user-written text: printed verbatim, never read as markup
        console.print(line, markup=False, soft_wrap=True)


def taxonomy_validate(
    files: list[Path] = typer.Argument(..., help="Category files or folders to validate."),
) -> None:
    """Validate category files (exit 2 with the file and field of the first error)."""
    from deploysim.grade.taxonomy import category_files, load_category_file

    with user_errors():
        paths = category_files(files)
        for path in paths:
            c = load_category_file(path)
            console.print(f"ok  {path}  ({c.id}, {c.group})")
    console.print(f"{len(paths)} file(s) valid")


def register(app: typer.Typer) -> None:
    app.command("grade")(grade)
    taxonomy_app.command("list")(taxonomy_list)
    taxonomy_app.command("show")(taxonomy_show)
    taxonomy_app.command("validate")(taxonomy_validate)
    app.add_typer(taxonomy_app, name="taxonomy")
