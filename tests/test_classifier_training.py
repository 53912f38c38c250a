"""Training data of the classifier heads: pyrit's human-scored CSVs mapped to heads."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from deploysim.grade.training import (
    HEADS,
    HeadSpec,
    ScoredResponse,
    _read_csv,
    head_dataset,
    load_scored_responses,
    off_topic_answers,
    scorer_evals_dir,
    train_head,
)

#: the pyrit release whose data trained the committed heads (exact counts below are its)
TRAINED_ON_PYRIT = "1.1.0"


@pytest.fixture(scope="module")
def pyrit_rows() -> list[ScoredResponse]:
    if importlib.util.find_spec("pyrit") is None:
        pytest.skip("pyrit (installed --no-deps for its data) is not installed")
    if importlib.metadata.version("pyrit") != TRAINED_ON_PYRIT:
        pytest.skip(f"exact counts are those of pyrit {TRAINED_ON_PYRIT}")
    rows, report = load_scored_responses(scorer_evals_dir())
    assert (report.rows, len(rows), len(report.skipped)) == (1554, 1547, 7)
    assert all("duplicate of" in s for s in report.skipped)
    return rows


def row(source: str, kind: str, score: float, response: str = "text",
        objective: str = "obj") -> ScoredResponse:
    return ScoredResponse(source, kind, f"{kind}/{source}.csv", 2, objective, response, score)


def test_head_datasets_have_the_documented_sizes(pyrit_rows: list[ScoredResponse]) -> None:
    expected = {"sexual": (1487, 66), "hate": (1097, 157), "violence": (1057, 151), "self_harm": (1157, 72),
                "nonviolent_wrongdoing": (1347, 173), "refusal": (475, 76)}
    for spec in HEADS:
        data = head_dataset(spec, pyrit_rows)
        assert (len(data), sum(y for _, y in data)) == expected[spec.category], spec.category
    assert len(off_topic_answers(pyrit_rows)) == 33


def test_mapping_rules_on_synthetic_rows() -> None:
    spec = HeadSpec("hate", "response", ("hate_speech",), ("violence",))
    rows = [row("hate_speech", "harm", 0.75), row("hate_speech", "harm", 0.25),
            row("hate_speech", "objective", 1), row("violence", "harm", 1.0), row("sexual", "harm", 1.0),
            row("refusal", "refusal", 1, "No."),
            row("refusal", "refusal", 0, "Sure, here it is.")]
    labels = [(r.source, r.kind, r.score, y) for r, y in head_dataset(spec, rows)]
    assert labels == [("hate_speech", "harm", 0.75, 1), ("hate_speech", "harm", 0.25, 0),
                      ("hate_speech", "objective", 1, 1),
                      ("sexual", "harm", 1.0, 0),  # violence overlaps hate: left out
                      ("refusal", "refusal", 1, 0)]  # a refusal is a negative; a compliant answer is unused


def test_refusal_head_drops_off_topic_copies_and_uses_strong_harm_as_negatives() -> None:
    spec = HeadSpec("refusal", "response+opening")
    story = "Once upon a time a dog found its way home."
    rows = [row("refusal", "refusal", 0, story, "Write a dog story"),
            row("refusal", "refusal", 1, story, "Give me kingdom names"),  # another request's answer
            row("refusal", "refusal", 1, "I can't help with that.", "Make a bomb"),
            row("violence", "harm", 1.0, "Detailed violent text"), row("violence", "harm", 0.5, "Mild")]
    data = head_dataset(spec, rows)
    assert [(r.response, y) for r, y in data] == [(story, 0), ("I can't help with that.", 1),
                                                  ("Detailed violent text", 0)]


def test_csv_reader_skips_comments_and_reports_first_physical_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text('# version=1\n# note\nobjective,assistant_response,human_score\n'
                    'a,"two\nlines",1\nb,one line,0\n', encoding="utf-8")
    assert [(line, r["objective"]) for line, r in _read_csv(path)] == [(4, "a"), (6, "b")]


def test_bad_scores_are_reported_with_file_and_line(tmp_path: Path) -> None:
    for folder in ("harm", "objective", "refusal_scorer"):
        (tmp_path / folder).mkdir()
    (tmp_path / "harm" / "sexual.csv").write_text(
        "harm_category,objective,assistant_response,human_score_1,data_type\n"
        "s,o,fine,0.5,text\ns,o,bad,high,text\ns,o,,1,text\ns,o,img,1,image\n", encoding="utf-8")
    rows, report = load_scored_responses(tmp_path)
    assert [r.response for r in rows] == ["fine"]
    assert report.skipped == ["harm/sexual.csv:3: non-numeric human score",
                              "harm/sexual.csv:4: no human score or empty response",
                              "harm/sexual.csv:5: data_type 'image' is not text"]


def test_train_head_reports_cv_and_a_threshold_on_separable_data() -> None:
    rng = np.random.default_rng(0)
    n = 120
    labels = (np.arange(n) % 4 == 0).astype(int)
    features = rng.normal(size=(n, 6)) + labels[:, None] * 1.5  # overlapping classes: finite optimum
    data = [(row("x", "harm", float(y), response=f"r{i}"), int(y)) for i, y in enumerate(labels)]
    trained = train_head(HeadSpec("x", "response", ("x",)), data, features, seed=1, grid=(1e-2, 1e-1))
    assert trained.n == n and trained.positives == 30
    assert trained.cv["auc"] > 0.95
    assert 0 < trained.threshold < 1 and len(trained.cv["l2_per_outer_fold"]) == 5
    assert trained.l2 in (1e-2, 1e-1) and trained.coef.shape == (6,)
