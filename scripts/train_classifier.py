"""Train the embedded classifier heads from the human-labelled data shipped in ``pyrit``.

    .venv/bin/python scripts/train_classifier.py [--out DIR] [--heads sexual,refusal] [--threads N]

Reads ``pyrit/datasets/scorer_evals`` from the installed package (``pip install --no-deps pyrit``),
embeds every response (and, for the refusal head, its opening sentence) with the embedded MiniLM
model, fits one L2 logistic regression per head, prints the nested 5-fold cross-validated AUC
per head and writes ``<category>.json`` weights (default: the package's ``grade/weights/``).
A weights file is the grader's identity: its bytes enter the grader hash. The rules that map
the data to heads are in ``deploysim.grade.training``; docs/graders-validation.md explains them.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
import time
from pathlib import Path

import numpy as np
import orjson

from deploysim.grade.classifier import TEXT_VERSION, WEIGHTS_FORMAT, build_features, opening_text, weights_dir
from deploysim.grade.training import (
    HARM_POSITIVE_AT,
    HEADS,
    REFUSAL_NEGATIVE_HARM_AT,
    TrainedHead,
    head_dataset,
    load_scored_responses,
    scorer_evals_dir,
    train_head,
)
from deploysim.models.embeddings import MAX_LENGTH, MODEL_ID, EmbedderConfig, MiniLMEmbedder


def _round(values: np.ndarray) -> list[float]:
    return [float(f"{v:.8g}") for v in values.tolist()]


def weights_record(trained: TrainedHead, model_sha256: str, pyrit_version: str) -> dict[str, object]:
    return {
        "format": WEIGHTS_FORMAT,
        "category": trained.spec.category,
        "features": trained.spec.features,
        "text_version": TEXT_VERSION,
        "embedding_model": {"id": MODEL_ID, "sha256": model_sha256, "max_length": MAX_LENGTH},
        "coef": _round(trained.coef),
        "intercept": float(f"{trained.intercept:.8g}"),
        "l2": trained.l2,
        "threshold": float(f"{trained.threshold:.6g}"),
        "training": {
            "data": f"pyrit {pyrit_version} datasets/scorer_evals (human scores)",
            "binarisation": (f"harm score >= {HARM_POSITIVE_AT} (mean over raters); objective and refusal "
                             f"labels as given; refusal head: harm rows >= {REFUSAL_NEGATIVE_HARM_AT} "
                             "are non-refusals"),
            "n": trained.n, "positives": trained.positives, "rows_per_file": trained.sources,
        },
        "cv": trained.cv,
        "trained_with": "scripts/train_classifier.py",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=weights_dir(), help="folder for <category>.json")
    parser.add_argument("--heads", default="", help="comma-separated subset of heads (default: all)")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime threads")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fold assignment")
    args = parser.parse_args(argv)

    wanted = {h for h in args.heads.split(",") if h}
    unknown = wanted - {h.category for h in HEADS}
    if unknown:
        parser.error(f"unknown heads: {', '.join(sorted(unknown))}")
    heads = [h for h in HEADS if not wanted or h.category in wanted]

    root = scorer_evals_dir()
    rows, report = load_scored_responses(root)
    print(f"read {report.rows} rows from {root.name}/: {len(rows)} used, {len(report.skipped)} skipped")
    for line in report.skipped:
        print(f"  skipped {line}")

    embedder = MiniLMEmbedder(EmbedderConfig(threads=args.threads))
    texts = sorted({r.response for r in rows} | {opening_text(r.response) for r in rows})
    start = time.perf_counter()
    vectors = dict(zip(texts, embedder.embed(texts), strict=True))
    print(f"embedded {len(texts)} texts in {time.perf_counter() - start:.1f} s")

    model_sha = embedder.model_sha256()
    pyrit_version = importlib.metadata.version("pyrit")
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{'head':<24}{'n':>6}{'pos':>6}{'CV AUC':>9}{'F1@t':>7}{'P@t':>7}{'R@t':>7}{'t':>8}{'λ':>9}")
    for spec in heads:
        data = head_dataset(spec, rows)
        responses = np.stack([vectors[r.response] for r, _ in data])
        openings = np.stack([vectors[opening_text(r.response)] for r, _ in data])
        features = build_features(spec.features, responses, openings)
        trained = train_head(spec, data, features, seed=args.seed)
        cv = trained.cv
        print(f"{spec.category:<24}{trained.n:>6}{trained.positives:>6}{cv['auc']:>9.3f}"
              f"{cv['f1_at_threshold']:>7.3f}{cv['precision_at_threshold']:>7.3f}"
              f"{cv['recall_at_threshold']:>7.3f}{trained.threshold:>8.3f}{trained.l2:>9.0e}")
        record = weights_record(trained, model_sha, pyrit_version)
        text = orjson.dumps(record, option=orjson.OPT_INDENT_2) + b"\n"
        (args.out / f"{spec.category}.json").write_bytes(text)
    print(f"wrote {len(heads)} heads to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
