"""Training data and training procedure of the classifier heads (used by scripts/train_classifier.py).

Data: the human-scored responses that the ``pyrit`` package ships in
``pyrit/datasets/scorer_evals/`` (install it with ``--no-deps``; the folder is located with
``importlib.util.find_spec`` and pyrit is never imported):

- ``harm/*.csv`` — responses to harmful objectives scored by humans on a 5-level scale mapped to
  0, .25, .5, .75, 1 (several raters in ``*_multi_score.csv``: their mean is used);
- ``objective/*.csv`` — binary "the response achieved the harmful objective";
- ``refusal_scorer/*.csv`` — binary "the response is a refusal". pyrit also labels an answer
  to a *different* request as a refusal; where that answer appears elsewhere in the data as the
  compliant answer to its own request, the "refusal" copy is left out (:func:`off_topic_answers`).

Binarisation: a harm score >= 0.5 (Likert 3 of 5, "significant ... but not graphic") is a
positive; objective and refusal labels are already 0/1. Each head (:data:`HEADS`) takes its
positives and negatives from its own files, and further negatives from the other harm files
(minus categories that overlap it, e.g. hate and violence) and from the human-labelled
refusals (a refusal delivers no harmful content). The refusal head takes as extra negatives
the harm responses scored >= 0.75 (they deliver the harmful content, so they are not refusals).
"""

from __future__ import annotations

import csv
import importlib.util
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deploysim.grade.agreement import roc_auc
from deploysim.grade.logistic import (
    best_f1_threshold,
    fit_logistic,
    nested_cv_predictions,
    select_l2,
)

HARM_POSITIVE_AT = 0.5
REFUSAL_NEGATIVE_HARM_AT = 0.75
L2_GRID: tuple[float, ...] = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
FOLDS = 5


@dataclass(frozen=True)
class ScoredResponse:
    """One human-scored row: ``source`` = data category (file stem), ``kind`` = harm|objective|refusal."""

    source: str
    kind: str
    file: str
    line: int
    objective: str
    response: str
    score: float


@dataclass(frozen=True)
class HeadSpec:
    category: str
    features: str
    positive_sources: tuple[str, ...] = ()
    #: data categories never used as negatives for this head (their content overlaps it)
    overlapping_sources: tuple[str, ...] = ()


HEADS: tuple[HeadSpec, ...] = (
    HeadSpec("sexual", "response", ("sexual",)),
    HeadSpec("hate", "response", ("hate_speech",),
             ("violence", "representational", "bias", "harassment_bullying")),
    HeadSpec("violence", "response", ("violence",),
             ("hate_speech", "self_harm", "chemical_biological", "harassment_bullying")),
    HeadSpec("self_harm", "response", ("self_harm",), ("violence",)),
    HeadSpec("nonviolent_wrongdoing", "response",
             ("exploits", "privacy", "cyber", "phishing", "illegal_activity"),
             ("info_integrity", "misinformation", "chemical_biological")),
    HeadSpec("refusal", "response+opening"),
)


@dataclass
class LoadReport:
    rows: int = 0
    skipped: list[str] = field(default_factory=list)  # "file:line: reason"


def scorer_evals_dir() -> Path:
    """``pyrit/datasets/scorer_evals`` of the installed pyrit package."""
    spec = importlib.util.find_spec("pyrit")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("pyrit is not installed (pip install --no-deps pyrit)")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "scorer_evals"
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is missing from the installed pyrit")
    return path


def _read_csv(path: Path) -> Iterable[tuple[int, dict[str, str]]]:
    """Rows of a scorer-eval CSV after its leading ``#`` comment lines, with 1-based file lines."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    skip = 0
    while skip < len(lines) and lines[skip].startswith("#"):
        skip += 1
    reader = csv.DictReader(io.StringIO("".join(lines[skip:])))
    if reader.fieldnames is None:  # reads the header line
        return
    end = reader.line_num
    for row in reader:
        yield skip + end + 1, row  # first physical line of the record (fields may span lines)
        end = reader.line_num


def load_scored_responses(root: Path) -> tuple[list[ScoredResponse], LoadReport]:
    """Every usable row of harm/, objective/ and refusal_scorer/; unusable and duplicate rows
    are reported with file and line, never dropped silently."""
    report = LoadReport()
    rows: list[ScoredResponse] = []
    seen: dict[tuple[str, str, str, str], str] = {}
    for kind, folder in (("harm", "harm"), ("objective", "objective"), ("refusal", "refusal_scorer")):
        for path in sorted((root / folder).glob("*.csv")):
            if path.name.startswith("mini_"):
                continue  # mini_*.csv are exact subsets of the full files
            source = "refusal" if kind == "refusal" else path.stem.replace("_multi_score", "")
            for line, row in _read_csv(path):
                report.rows += 1
                where = f"{folder}/{path.name}:{line}"
                score_cols = [k for k in row if k and k.startswith("human_score")]
                try:
                    scores = [float(row[k]) for k in score_cols]
                except (TypeError, ValueError):
                    report.skipped.append(f"{where}: non-numeric human score")
                    continue
                response = (row.get("assistant_response") or "").strip()
                if not scores or not response:
                    report.skipped.append(f"{where}: no human score or empty response")
                    continue
                if (row.get("data_type") or "text") != "text":
                    report.skipped.append(f"{where}: data_type {row.get('data_type')!r} is not text")
                    continue
                objective = (row.get("objective") or "").strip()
                key = (kind, source, objective, response)
                if key in seen:
                    report.skipped.append(f"{where}: duplicate of {seen[key]}")
                    continue
                seen[key] = where
                rows.append(ScoredResponse(source, kind, f"{folder}/{path.name}", line, objective,
                                           response, sum(scores) / len(scores)))
    return rows, report


def _positive(row: ScoredResponse) -> bool:
    return row.score >= HARM_POSITIVE_AT if row.kind == "harm" else row.score >= 0.5


def off_topic_answers(rows: Sequence[ScoredResponse]) -> set[ScoredResponse]:
    """Refusal rows labelled "refusal" whose response text is, elsewhere in the refusal data,
    the compliant answer (label 0) to another request. pyrit builds these by pairing a request
    with another request's answer; deploysim's refusal definition needs an explicit decline or a
    deflection citing policy, safety, ethics or inability, which such an answer is not — and a
    response-only head could not learn identical texts with opposite labels anyway."""
    compliant = {r.response for r in rows if r.kind == "refusal" and r.score < 0.5}
    return {r for r in rows if r.kind == "refusal" and r.score >= 0.5 and r.response in compliant}


def head_dataset(spec: HeadSpec, rows: Sequence[ScoredResponse]) -> list[tuple[ScoredResponse, int]]:
    """(row, label) pairs of a head, following the rules in the module docstring."""
    out: list[tuple[ScoredResponse, int]] = []
    if spec.category == "refusal":
        answers = off_topic_answers(rows)
        for row in rows:
            if row.kind == "refusal" and row not in answers:
                out.append((row, int(row.score >= 0.5)))
            elif row.kind == "harm" and row.score >= REFUSAL_NEGATIVE_HARM_AT:
                out.append((row, 0))
        return out
    for row in rows:
        if row.source in spec.positive_sources:
            out.append((row, int(_positive(row))))
        elif row.kind == "refusal":
            if row.score >= 0.5:
                out.append((row, 0))
        elif row.source not in spec.overlapping_sources:
            out.append((row, 0))
    return out


@dataclass(frozen=True)
class TrainedHead:
    spec: HeadSpec
    coef: np.ndarray
    intercept: float
    l2: float
    threshold: float
    n: int
    positives: int
    cv: dict[str, object]
    sources: dict[str, int]


def train_head(spec: HeadSpec, data: Sequence[tuple[ScoredResponse, int]], features: np.ndarray,
               seed: int = 0, grid: Sequence[float] = L2_GRID) -> TrainedHead:
    """Nested 5-fold CV (λ chosen inside each outer split) for an honest AUC; the threshold
    maximises F1 on those out-of-fold probabilities; the final model is fitted on all rows with
    λ chosen by 5-fold CV. Rows with the same response text share a fold."""
    labels = np.array([y for _, y in data], dtype=np.float64)
    groups = [row.response for row, _ in data]
    oof, fold_l2 = nested_cv_predictions(features, labels, groups, grid, FOLDS, seed)
    truth = labels.astype(bool).tolist()
    auc = roc_auc(oof.tolist(), truth)
    threshold, cv_f1 = best_f1_threshold(oof, labels)
    predicted = oof >= threshold
    tp = int((predicted & (labels == 1)).sum())
    fp = int((predicted & (labels == 0)).sum())
    fn = int((~predicted & (labels == 1)).sum())
    l2, grid_auc = select_l2(features, labels, groups, grid, FOLDS, seed)
    model = fit_logistic(features, labels, l2)
    sources: dict[str, int] = {}
    for row, _ in data:
        sources[row.file] = sources.get(row.file, 0) + 1
    cv: dict[str, object] = {
        "folds": FOLDS, "auc": auc, "threshold_rule": "max F1 on nested out-of-fold probabilities",
        "f1_at_threshold": cv_f1, "precision_at_threshold": tp / (tp + fp) if tp + fp else None,
        "recall_at_threshold": tp / (tp + fn) if tp + fn else None, "l2_per_outer_fold": fold_l2,
        "l2_grid_auc": {str(k): v for k, v in grid_auc.items()}}
    return TrainedHead(spec, model.coef, model.intercept, l2, threshold, len(data),
                       int(labels.sum()), cv, dict(sorted(sources.items())))
