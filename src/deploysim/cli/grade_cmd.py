"""``deploysim grade`` and ``deploysim taxonomy list|show|validate``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

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
from deploysim.cli.tables import PlainTable, emit

if TYPE_CHECKING:
    from deploysim.grade.stage import GradeReport

taxonomy_app = typer.Typer(help="List, show and validate taxonomy categories.", no_args_is_help=True)


def summary_table(report: GradeReport) -> PlainTable:
    """Per category: its grader and, per arm, ok judgments / positives / errors / abstained
    (+ items still ungraded)."""
    from deploysim.records import ARM_LABELS

    arms = list(report.completions)
    heads = [f"{ARM_LABELS.get(a, a)} (n={report.completions[a]})" for a in arms]
    table = PlainTable("judgments per category and arm: ok / positive / errors / abstained",
                       ["category", "grader", *heads], keys=1)
    for r in report.categories:
        cells = []
        for arm in arms:
            n = r.arms.get(arm)
            cells.append("-" if n is None else f"{n.ok}/{n.positive}/{n.errors}/{n.abstained}"
                         + (f" ({n.ungraded} left)" if n.ungraded else ""))
        table.add_row(r.category, f"{r.kind} {r.grader_hash[:10]}", *cells)
    return table


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
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Grade every completion and every production response of the run, for every category of
    the taxonomy, with each category's frozen grader. Resumable: only missing judgments are made.
    Exit 3 on a budget stop, 4 when items are left ungraded or failed."""
    from deploysim.assemble import Options
    from deploysim.grade.config import GradeConfig
    from deploysim.grade.stage import GradeReport

    with user_errors():
        cfg = base = load_target(target)
        overrides = {"mode": mode, "categories": category or None, "arms": arm or None, "judge": judge,
                     "concurrency": concurrency, "cache": False if no_cache else None}
        section = (cfg.grade or GradeConfig()).model_dump()
        changed = {k: v for k, v in overrides.items() if v is not None}
        cfg = cfg.model_copy(update={"grade": GradeConfig.model_validate({**section, **changed})})
        reports = run_stages(cfg, ["grade"], Options(progress=not no_progress and not json_out,
                                                     budget_usd=budget),
                             quiet=json_out, base=base)
    if json_out:
        print_json(report_json(reports))
    elif reports[-1].data:
        report = GradeReport.model_validate(reports[-1].data)
        emit(console, summary_table(report))
        errors = sum(r.errors_now for r in report.categories)
        made = sum(r.graded_now for r in report.categories)
        console.print(f"graded {made} (category, completion) pairs now, {errors} errors; "
                      f"{report.judge_requests} judge requests, {report.judge_tokens:,} tokens, "
                      f"${report.judge_cost_usd:.4f}; {report.wall_s:.1f}s", soft_wrap=True, markup=False)
        if report.stopped_reason:
            console.print(f"stopped: {report.stopped_reason}", markup=False)
    finish(reports)


def _taxonomy(extra: list[Path] | None):  # type: ignore[no-untyped-def]
    from deploysim.grade.taxonomy import load_taxonomy

    return load_taxonomy(extra or [])


def taxonomy_list(
    extra: list[Path] = typer.Option(None, "--taxonomy", help="Extra category files or folders."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List the categories: id, group, default and offline grader, and the file each came from."""
    with user_errors():
        tax = _taxonomy(extra)
    table = PlainTable(f"{len(tax)} categories", ["id", "group", "default", "offline grader", "source"])
    rows = []
    for c in tax:
        offline = c.grader.offline + (f":{c.grader.classifier_head}" if c.grader.offline == "classifier"
                                      else f":{c.grader.rules}")
        table.add_row(c.id, c.group, c.grader.default, offline, c.source)
        rows.append({"id": c.id, "group": c.group, "default": c.grader.default, "offline": offline,
                     "source": c.source})
    if json_out:
        print_json(rows)
    else:
        emit(console, table)


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
