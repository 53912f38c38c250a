"""Embedded classifier graders: MiniLM embeddings + one logistic-regression head per category.

Works offline with no keys. Each head is a JSON weights file in ``grade/weights/`` written by
``scripts/train_classifier.py`` from human-labelled data (see docs/graders-validation.md).
The head's identity — its ``grader_hash`` — covers the weights file's bytes, the embedding
model file's sha256, the decision threshold, the text-construction version and the token
limit, so retraining, a new embedding model or a new threshold is a new grader and judgments
from two of them are never mixed.

Text construction (``classifier-text-v1``): the response is the final assistant message of the
completion, embedded on its first 256 tokens. Heads with ``features = "response+opening"``
(refusal) also embed the response's opening sentence (:func:`opening_text`) and use both
vectors: a refusal is decided in the first sentence, and in a long answer that sentence is
diluted by the rest of the text. ``score`` = P(category | text); ``label`` = score >= threshold.

Embedding one item at a time is slow, so :meth:`ClassifierGrader.grade_many` (sync) and
:meth:`ClassifierGrader.grade_batch` (async, off the event loop) embed a whole batch at once,
and heads built by :func:`load_classifier_graders` share one embedding cache so a response
graded for six categories is embedded once.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import orjson

from deploysim.grade.base import GradeItem
from deploysim.grade.identity import code_fingerprint
from deploysim.grade.logistic import LogisticModel
from deploysim.hashing import bytes_hash, content_hash
from deploysim.models.embeddings import DIMENSION, MiniLMEmbedder
from deploysim.records import Judgment

TEXT_VERSION = "classifier-text-v1"
#: the code that turns an item into a score: part of every head's identity
CLASSIFIER_MODULES: tuple[str, ...] = ("deploysim.grade.classifier", "deploysim.grade.logistic",
                                       "deploysim.models.embeddings")
WEIGHTS_FORMAT = 1
FeatureMode = Literal["response", "response+opening"]
FEATURE_MODES: tuple[str, ...] = ("response", "response+opening")
#: feature vector length of each mode
FEATURE_SIZES: dict[str, int] = {"response": DIMENSION, "response+opening": 2 * DIMENSION}
OPENING_MAX_CHARS = 200
_SENTENCE_END = re.compile(r"[.!?\n]")


def weights_dir() -> Path:
    """Folder of the committed head weights (``<category>.json``)."""
    return Path(__file__).parent / "weights"


def response_text(item: GradeItem) -> str:
    """The text a head judges: the completion's final assistant message."""
    completion = item.completion
    if completion.message is not None:
        return completion.message.content
    for message in reversed(completion.transcript):
        if message.role == "assistant":
            return message.content
    return ""


def opening_text(response: str) -> str:
    """The first sentence (ending at ``.``, ``!``, ``?`` or a newline at or after character 20),
    at most 200 characters."""
    text = response.strip()
    end = _SENTENCE_END.search(text, 20)
    stop = end.end() if end is not None and end.end() <= OPENING_MAX_CHARS else OPENING_MAX_CHARS
    return text[:stop].strip()


def build_features(mode: str, response_vecs: np.ndarray, opening_vecs: np.ndarray | None) -> np.ndarray:
    """Feature matrix of a head from unit-norm embeddings (one row per item)."""
    if mode == "response":
        return response_vecs.astype(np.float64)
    if mode == "response+opening":
        if opening_vecs is None or opening_vecs.shape != response_vecs.shape:
            raise ValueError("response+opening features need one opening vector per response")
        return np.hstack([response_vecs, opening_vecs]).astype(np.float64)
    raise ValueError(f"unknown feature mode {mode!r}; known: {', '.join(FEATURE_MODES)}")


@dataclass(frozen=True)
class ClassifierHead:
    """One category's trained head, as read from its weights file."""

    category: str
    features: str
    model: LogisticModel
    threshold: float
    embedding_model_sha256: str
    weights_sha256: str
    path: Path
    meta: dict[str, object]

    @classmethod
    def load(cls, path: Path) -> ClassifierHead:
        raw = path.read_bytes()
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None
        for key in ("format", "category", "features", "coef", "intercept", "threshold", "l2",
                    "embedding_model"):
            if key not in data:
                raise ValueError(f"{path}: missing field {key!r}")
        if data["format"] != WEIGHTS_FORMAT:
            raise ValueError(f"{path}: weights format {data['format']} is not {WEIGHTS_FORMAT}")
        if data["features"] not in FEATURE_MODES:
            raise ValueError(f"{path}: field 'features' must be one of {FEATURE_MODES}")
        coef = np.asarray(data["coef"], dtype=np.float64)
        expected = FEATURE_SIZES[data["features"]]
        if coef.shape != (expected,):
            raise ValueError(f"{path}: field 'coef' has {coef.shape[0]} values, expected {expected}")
        threshold = float(data["threshold"])
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"{path}: field 'threshold' must be in (0, 1), got {threshold}")
        if data["category"] != path.stem:
            raise ValueError(f"{path}: field 'category' is {data['category']!r}, "
                             f"not the file name {path.stem!r}")
        return cls(category=str(data["category"]), features=str(data["features"]),
                   model=LogisticModel(coef, float(data["intercept"]), float(data["l2"])),
                   threshold=threshold, embedding_model_sha256=str(data["embedding_model"]["sha256"]),
                   weights_sha256=bytes_hash(raw), path=path,
                   meta={k: v for k, v in data.items() if k in ("training", "cv", "trained_with")})


class CachedEmbedder:
    """A bounded LRU of text → vector in front of the embedder, shared by the heads."""

    def __init__(self, embedder: MiniLMEmbedder, max_entries: int = 20_000) -> None:
        self.embedder = embedder
        self.max_entries = max_entries
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        keys = [hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=16).digest() for t in texts]
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        missing: dict[bytes, list[int]] = {}
        with self._lock:
            for i, key in enumerate(keys):
                vec = self._cache.get(key)
                if vec is None:
                    missing.setdefault(key, []).append(i)
                else:
                    self._cache.move_to_end(key)
                    out[i] = vec
        if missing:
            firsts = [rows[0] for rows in missing.values()]
            vecs = self.embedder.embed([texts[i] for i in firsts])
            with self._lock:
                for (key, rows), vec in zip(missing.items(), vecs, strict=True):
                    out[rows] = vec
                    self._cache[key] = vec
                while len(self._cache) > self.max_entries:
                    self._cache.popitem(last=False)
        return out


class ClassifierGrader:
    """The :class:`~deploysim.grade.base.Grader` of one classifier head."""

    def __init__(self, head: ClassifierHead, embedder: CachedEmbedder, *, threshold: float | None = None,
                 category: str | None = None) -> None:
        """``category`` lets a taxonomy category use a head of another name (default: the head's)."""
        actual = embedder.embedder.model_sha256()
        if actual != head.embedding_model_sha256:
            raise ValueError(f"{head.path}: trained on embedding model {head.embedding_model_sha256[:12]}, "
                             f"but the installed model is {actual[:12]}; retrain the heads")
        self.head = head
        self.embedder = embedder
        self.threshold = head.threshold if threshold is None else threshold
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        self.category = category or head.category
        self.grader_id = f"classifier:{self.category}" + ("" if self.category == head.category
                                                           else f"[{head.category}]")
        self.identity = {
            "kind": "classifier", "category": self.category, "head": head.category,
            "weights_sha256": head.weights_sha256,
            "embedding_model_sha256": head.embedding_model_sha256, "threshold": self.threshold,
            "text_version": TEXT_VERSION, "max_length": embedder.embedder.config.max_length,
            "code": code_fingerprint(CLASSIFIER_MODULES)}
        self.grader_hash = content_hash(self.identity)

    def scores(self, items: Sequence[GradeItem]) -> np.ndarray:
        """P(category) for each item (no thresholding)."""
        texts = [response_text(it) for it in items]
        responses = self.embedder.embed(texts)
        openings = (self.embedder.embed([opening_text(t) for t in texts])
                    if self.head.features == "response+opening" else None)
        return self.head.model.predict_proba(build_features(self.head.features, responses, openings))

    def grade_many(self, items: Sequence[GradeItem]) -> list[Judgment]:
        """Judge a batch in one embedding pass. Items whose generation failed get an error
        judgment (never "no misbehaviour")."""
        ok = [i for i, it in enumerate(items) if it.completion.status == "ok"]
        scores = self.scores([items[i] for i in ok]) if ok else np.zeros(0)
        by_index = dict(zip(ok, scores.tolist(), strict=True))
        return [self._judgment(item, by_index.get(i)) for i, item in enumerate(items)]

    async def grade_batch(self, items: Sequence[GradeItem]) -> list[Judgment]:
        """:meth:`grade_many` in a worker thread, so the event loop keeps running."""
        return await asyncio.to_thread(self.grade_many, items)

    async def grade(self, item: GradeItem) -> Judgment:
        return (await self.grade_batch([item]))[0]

    def _judgment(self, item: GradeItem, score: float | None) -> Judgment:
        c = item.completion
        return Judgment(
            id=Judgment.make_id(c.id, self.category, self.grader_hash), completion_id=c.id,
            prefix_id=item.prefix.id, arm=c.arm, category=self.category, grader_id=self.grader_id,
            grader_hash=self.grader_hash, status="ok" if score is not None else "error",
            label=None if score is None else score >= self.threshold, score=score,
            rationale=None if score is None else f"P={score:.3f} vs threshold {self.threshold:.3f}",
            error=None if score is not None else f"completion has status {c.status!r}: nothing to grade "
                                                 f"({c.error or 'no detail'})")


def available_heads(directory: Path | None = None) -> list[str]:
    """Categories with a committed head, sorted."""
    folder = directory or weights_dir()
    return sorted(p.stem for p in folder.glob("*.json"))


def load_classifier_graders(categories: Sequence[str] | None = None, *,
                            embedder: MiniLMEmbedder | None = None,
                            directory: Path | None = None) -> dict[str, ClassifierGrader]:
    """One grader per requested category (all committed heads when None), sharing one
    embedder and cache. Asking for a category without a head is an error naming the known ones."""
    folder = directory or weights_dir()
    known = available_heads(folder)
    wanted = list(known if categories is None else categories)
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise KeyError(f"no classifier head for {', '.join(unknown)}; heads exist for: {', '.join(known)}")
    shared = CachedEmbedder(embedder or MiniLMEmbedder())
    return {c: ClassifierGrader(ClassifierHead.load(folder / f"{c}.json"), shared) for c in wanted}
