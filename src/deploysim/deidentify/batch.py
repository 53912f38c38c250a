"""Batched detection: spaCy ``nlp.pipe`` inside each process, a process pool across cores.

Presidio's plain loop calls ``analyzer.analyze(text)`` per text, which runs spaCy on one text
at a time. Here texts go through ``nlp.pipe`` in batches and the recognizers then reuse the
precomputed ``NlpArtifacts``; the findings are the same. Each worker process builds its
analyzer once, in the pool initializer, and keeps it for every batch it is sent.

Memory: a worker holds one spaCy model and Presidio (~200-300 MB), so the default worker count
is the number of usable cores capped by available memory.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from typing import Any

import psutil
from presidio_analyzer import AnalyzerEngine, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from deploysim.deidentify.config import DeidentifyConfig
from deploysim.deidentify.engine import LANGUAGE, build_analyzer, describe_detector
from deploysim.deidentify.parsed_names import ParsedNameRecognizer
from deploysim.deidentify.person_filter import keep_person, looks_foreign
from deploysim.deidentify.pseudonyms import Finding

#: texts longer than this are cut at paragraph or line breaks before NER (spaCy's cost grows
#: with length and its hard limit is 10^6 characters)
MAX_PIECE_CHARS = 20_000
WORKER_MEMORY_BYTES = 400 * 2**20
MAX_DEFAULT_WORKERS = 8
#: below this many texts a pool's start-up (a few seconds per worker) costs more than it saves
MIN_TEXTS_FOR_POOL = 256


def default_workers() -> int:
    """One worker per usable core, at most what available memory holds, at least one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    by_memory = int(psutil.virtual_memory().available // WORKER_MEMORY_BYTES)
    return max(1, min(cores, by_memory, MAX_DEFAULT_WORKERS))


def split_long(text: str, limit: int = MAX_PIECE_CHARS) -> list[tuple[int, str]]:
    """(offset, piece) covering ``text``, cut at a blank line, else a line break, else a space."""
    pieces, start = [], 0
    while len(text) - start > limit:
        window = text[start : start + limit]
        cuts = [
            i + 1 for i in (window.rfind("\n\n"), window.rfind("\n"), window.rfind(" ")) if i > limit // 2
        ]
        cut = cuts[0] if cuts else limit
        pieces.append((start, text[start : start + cut]))
        start += cut
    pieces.append((start, text[start:]))
    return pieces


class Detector:
    """One analyzer in this process; :meth:`detect` runs a batch through ``nlp.pipe``."""

    def __init__(self, cfg: DeidentifyConfig, analyzer: AnalyzerEngine | None = None) -> None:
        self.cfg = cfg
        self.analyzer = analyzer if analyzer is not None else build_analyzer(cfg)
        self.lexicon = next(
            r.lexicon for r in self.analyzer.registry.recognizers if isinstance(r, ParsedNameRecognizer)
        )

    def describe(self) -> dict[str, Any]:
        return describe_detector(self.cfg, self.analyzer)

    def analyze_batch(
        self, texts: Sequence[str]
    ) -> Iterator[tuple[str, NlpArtifacts, list[RecognizerResult]]]:
        """Presidio's results for each text, with spaCy run over the batch by ``nlp.pipe``:
        the same results as ``analyzer.analyze(text)`` text by text."""
        artifacts = self.analyzer.nlp_engine.process_batch(
            list(texts), language=LANGUAGE, batch_size=self.cfg.batch_size
        )
        for text, (_, nlp_artifacts) in zip(texts, artifacts, strict=True):
            yield (
                text,
                nlp_artifacts,
                self.analyzer.analyze(
                    text,
                    LANGUAGE,
                    entities=self.cfg.entities,
                    score_threshold=self.cfg.score_threshold,
                    nlp_artifacts=nlp_artifacts,
                ),
            )

    def detect(self, texts: Sequence[str]) -> list[list[Finding]]:
        """Findings per text: :meth:`analyze_batch` on pieces of long texts, with implausible
        PERSON findings removed (:mod:`person_filter`)."""
        out: list[list[Finding]] = [[] for _ in texts]
        pieces = [
            (i, offset, piece)
            for i, text in enumerate(texts)
            for offset, piece in split_long(text)
            if piece.strip()
        ]
        analyzed = self.analyze_batch([p for _, _, p in pieces])
        for (i, offset, _), (piece, nlp_artifacts, results) in zip(pieces, analyzed, strict=True):
            doc = nlp_artifacts.tokens
            english = cache(lambda doc=doc: not looks_foreign(doc))
            out[i].extend(
                Finding(r.start + offset, r.end + offset, r.entity_type, round(r.score, 6))
                for r in results
                if r.entity_type != "PERSON" or keep_person(piece, r, doc, self.lexicon, english)
            )
        return out


#: the worker process's detector, set once by the pool initializer (process-local by design:
#: it is what lets a worker keep its loaded model between batches)
_worker_detector: Detector | None = None


def _init_worker(cfg_json: str) -> None:
    global _worker_detector
    _worker_detector = Detector(DeidentifyConfig.model_validate_json(cfg_json))


def _describe_in_worker(_: int) -> dict[str, Any]:
    if _worker_detector is None:
        raise RuntimeError("detector worker was not initialised")
    return _worker_detector.describe()


def _detect_in_worker(texts: list[str]) -> list[list[Finding]]:
    if _worker_detector is None:
        raise RuntimeError("detector worker was not initialised")
    return _worker_detector.detect(texts)


class DetectorPool:
    """Detection over ``workers`` processes (``cfg.workers``; 0 = :func:`default_workers`).

    Small batches run in-process; the pool starts on the first large one. Use as a context
    manager so worker processes are shut down.
    """

    def __init__(self, cfg: DeidentifyConfig, *, min_texts_for_pool: int = MIN_TEXTS_FOR_POOL) -> None:
        self.cfg = cfg
        self.workers = cfg.workers or default_workers()
        self.min_texts_for_pool = min_texts_for_pool
        self._local: Detector | None = None
        self._executor: ProcessPoolExecutor | None = None

    def detect(self, texts: Sequence[str]) -> list[list[Finding]]:
        if self.workers <= 1 or (self._executor is None and len(texts) < self.min_texts_for_pool):
            return self._local_detector().detect(texts)
        size = self.cfg.batch_size
        chunks = [list(texts[i : i + size]) for i in range(0, len(texts), size)]
        return [found for chunk in self.executor().map(_detect_in_worker, chunks) for found in chunk]

    def describe(self) -> dict[str, Any]:
        """The detector configuration, from the process that will detect (a worker if pooled)."""
        if self._executor is None:
            return self._local_detector().describe()
        return next(iter(self.executor().map(_describe_in_worker, [0])))

    def _local_detector(self) -> Detector:
        if self._local is None:
            self._local = Detector(self.cfg)
        return self._local

    def executor(self) -> ProcessPoolExecutor:
        """The worker pool, started on first use (spawned: no fork of a threaded parent)."""
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.cfg.model_dump_json(),),
            )
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> DetectorPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
