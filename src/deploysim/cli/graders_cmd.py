"""``deploysim graders validate`` (agreement with human labels) and ``deploysim graders list``."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import typer
from rich import box
from rich.table import Table

from deploysim.cli.common import console, err_console, user_errors

if TYPE_CHECKING:
    from deploysim.config import RunConfig
    from deploysim.grade.label_sets import LabelSet
    from deploysim.grade.validate import CategoryValidation

graders_app = typer.Typer(no_args_is_help=True,
                          help="Validate graders against human-labelled sets; list graders and validations.")

GRADER_KINDS = ("classifier", "rules", "judge")


def default_store_dir() -> Path:
    """Where validations go without ``--run``: ``$XDG_CACHE_HOME/deploysim/validations``
    (``~/.cache/deploysim/validations``), a run-store folder holding only validations."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "deploysim" / "validations"


def _cell(iv: dict[str, object]) -> str:
    """Point estimate over its interval, on two lines to keep the table narrow."""
    value, low, high = iv["value"], iv["low"], iv["high"]
    if not all(isinstance(x, float | int) for x in (value, low, high)):
        return "–"
    assert isinstance(value, float | int) and isinstance(low, float | int) and isinstance(high, float | int)
    return f"{_r(value):.3f}\n{_r(low):.3f}–{_r(high):.3f}"


def _r(x: float) -> float:
    return round(x, 3) + 0.0  # no "-0.000"


def validation_table(title: str, records: list[dict[str, object]]) -> Table:
    """One row per (grader, category): counts, then each figure over its interval."""
    table = Table(title=title, box=box.SIMPLE_HEAD, caption="intervals: Wilson (precision, recall, "
                  "specificity), delta-method Wald (F1), Fleiss–Cohen–Everitt Wald (κ)")
    table.add_column("category / grader", overflow="fold")
    for col in ("n", "tp fp\ntn fn", "prec.", "recall\n(se)", "spec.", "F1", "κ", "err", "no\nlabel"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in records:
        cells = [_cell(r[k]) for k in ("precision", "recall", "specificity", "f1",
                                       "kappa")]  # type: ignore[arg-type]
        name = f"{r['category']}\n[dim]{r['grader_id']}\n{str(r['grader_hash'])[:12]}[/]"
        table.add_row(name, str(r["n"]), f"{r['tp']} {r['fp']}\n{r['tn']} {r['fn']}", *cells,
                      str(r["errors"]), str(r["unknown"]))
    return table


@graders_app.command("validate")
def validate_cmd(
    labels: list[Path] = typer.Argument(..., help="Label sets: OpenAI moderation samples-dev.jsonl, XSTest "
                                                  "completions CSV(s) or folder, or JSONL with "
                                                  "'response' and 'labels'. The format is detected."),
    grader: str = typer.Option("classifier", help="Grader kind to validate: classifier, rules or judge."),
    run: Path | None = typer.Option(None, help="Run directory or run file: store results in its database "
                                               "(and use its judge model for --grader judge)."),
    store_dir: Path | None = typer.Option(None, "--store", help="Validation store folder used without --run "
                                                                "(default ~/.cache/deploysim/validations)."),
    category: list[str] = typer.Option([], "--category", "-c", help="Only these categories (repeatable)."),
    limit: int | None = typer.Option(None, min=1, help="First N labelled items per category (quick check)."),
    threads: int = typer.Option(2, min=1, help="Embedding threads for the classifier."),
    confidence: float = typer.Option(0.95, min=0.5, max=0.999, help="Interval level."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the results as JSON to this file."),
) -> None:
    """Measure graders against human labels: precision, recall, specificity, F1, Cohen's κ.

    Each figure comes with an interval; results are stored by grader hash and label-set
    version, where the estimate stage finds them for grader-error (Rogan–Gladen) correction."""
    from deploysim.grade.label_sets import load_label_set
    from deploysim.grade.validate import store_validations
    from deploysim.store.db import RunStore

    with user_errors():
        if grader not in GRADER_KINDS:
            raise ValueError(f"--grader must be one of {', '.join(GRADER_KINDS)}, not {grader!r}")
        sets = [load_label_set(path) for path in labels]
        if run is not None:
            from deploysim.cli.common import open_run

            store, cfg = open_run(run)
        else:
            store, cfg = RunStore.open(store_dir or default_store_dir()), None
        all_records: list[dict[str, object]] = []
        with store:
            outcomes = asyncio.run(_validate(grader, sets, category, cfg, threads, confidence, limit))
            for label_set, results, missing in outcomes:
                for q in label_set.quarantined[:10]:
                    err_console.print(f"[yellow]quarantined[/] {q.source}:{q.line}: {q.reason}")
                if len(label_set.quarantined) > 10:
                    err_console.print(f"[yellow]… {len(label_set.quarantined) - 10} more quarantined rows[/]")
                store_validations(store, results)
                records = [{"category": r.category, "grader_hash": r.grader_hash, "dataset": r.dataset,
                            **r.record()} for r in results]
                all_records.extend(records)
                console.print(validation_table(
                    f"{label_set.dataset_id}: {len(label_set.items)} items, {len(label_set.quarantined)} "
                    f"quarantined ({confidence:.0%} intervals)", records))
                for cat, reason in missing.items():
                    console.print(f"[dim]{cat}: not validated — {reason}[/]")
            console.print(f"stored {len(all_records)} validation(s) in {store.db_path}")
    if json_out is not None:
        json_out.write_bytes(orjson.dumps(all_records, option=orjson.OPT_INDENT_2))
        console.print(f"wrote {json_out}")


async def _validate(kind: str, sets: list[LabelSet], only: list[str], cfg: RunConfig | None, threads: int,
                    confidence: float, limit: int | None) -> list[tuple[LabelSet, list[CategoryValidation],
                                                                       dict[str, str]]]:
    """Build the graders once for every category of every set, validate each set, close them."""
    from deploysim.grade.taxonomy import load_taxonomy
    from deploysim.grade.validate import build_validation_graders, validate_graders

    taxonomy = load_taxonomy(cfg.grade.taxonomy if cfg is not None and cfg.grade is not None else [])
    wanted = sorted({c for s in sets for c in s.categories() if not only or c in only})
    built = build_validation_graders(kind, wanted, taxonomy, config=cfg, threads=threads)
    try:
        out = []
        for label_set in sets:
            results = await validate_graders(built.graders, label_set, confidence=confidence, limit=limit)
            cats = set(label_set.categories())
            out.append((label_set, results, {c: r for c, r in built.missing.items() if c in cats}))
        return out
    finally:
        await built.aclose()


@graders_app.command("list")
def list_cmd(
    run: Path | None = typer.Option(None, help="Run directory or run file whose validations to show."),
    store_dir: Path | None = typer.Option(None, "--store", help="Validation store folder (default "
                                                                "~/.cache/deploysim/validations)."),
) -> None:
    """The embedded classifier heads (hash, threshold, training CV AUC) and stored validations."""
    from deploysim.grade.classifier import load_classifier_graders
    from deploysim.store.db import RunStore

    with user_errors():
        heads = load_classifier_graders()
        table = Table(title="embedded classifier heads")
        for col in ("category", "grader hash", "threshold", "CV AUC", "training n (positives)"):
            table.add_column(col)
        for name, g in heads.items():
            cv, training = g.head.meta.get("cv", {}), g.head.meta.get("training", {})
            assert isinstance(cv, dict) and isinstance(training, dict)
            auc = cv.get("auc", float("nan"))
            table.add_row(name, g.grader_hash[:12], f"{g.threshold:.3f}", f"{auc:.3f}",
                          f"{training.get('n')} ({training.get('positives')})")
        console.print(table)
        if run is not None:
            from deploysim.cli.common import open_run

            store, _ = open_run(run)
        else:
            folder = store_dir or default_store_dir()
            if not (folder / "run.sqlite").exists():
                console.print(f"no validations stored in {folder}")
                return
            store = RunStore.open(folder, create=False)
        with store:
            rows = store.grader_validations()
        if not rows:
            console.print(f"no validations stored in {store.db_path}")
            return
        for dataset in sorted({str(r["dataset"]) for r in rows}):
            console.print(validation_table(f"{dataset} (stored in {store.db_path})",
                                           [r for r in rows if r["dataset"] == dataset]))


def register(app: typer.Typer) -> None:
    app.add_typer(graders_app, name="graders")
