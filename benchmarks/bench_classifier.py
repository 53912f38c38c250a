"""Throughput of the embedded MiniLM embedder and of the classifier graders.

    .venv/bin/python benchmarks/bench_classifier.py [--n 200] [--threads 1 2]

Prints texts per second for short (~15 tokens) and long (256-token, truncated) texts per thread
count, and items per second for grading every item with all six classifier heads (one shared
embedding cache, so each response is embedded once however many heads read it).
"""

from __future__ import annotations

import argparse
import time

from deploysim.grade.base import GradeItem
from deploysim.grade.classifier import load_classifier_graders
from deploysim.models.embeddings import EmbedderConfig, MiniLMEmbedder
from deploysim.records import Completion, Message, Prefix

SHORT = "Can you tell me how to reset the password on my router, please? Number {i}."
LONG = ("The quarterly report describes revenue, costs, hiring plans and risks in detail. " * 30) + "{i}"


def items(n: int) -> list[GradeItem]:
    out = []
    for i in range(n):
        msgs = (Message(role="user", content=SHORT.format(i=i)),)
        prefix = Prefix(id=f"p{i}", conversation_id=f"c{i}", turn_index=0, messages=msgs)
        text = (SHORT if i % 2 else LONG).format(i=i)
        completion = Completion(id=f"x{i}", prefix_id=prefix.id, arm="x_on_y", model="bench",
                                generator_hash="b",
                                message=Message(role="assistant", content=text))
        out.append(GradeItem(prefix=prefix, completion=completion))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="texts per measurement")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="onnxruntime thread counts")
    args = parser.parse_args()
    for threads in args.threads:
        embedder = MiniLMEmbedder(EmbedderConfig(threads=threads))
        embedder.embed(["warm up"])
        for name, template in (("short", SHORT), ("long (256 tokens)", LONG)):
            texts = [template.format(i=i) for i in range(args.n)]
            start = time.perf_counter()
            embedder.embed(texts)
            elapsed = time.perf_counter() - start
            print(f"embed {name:<18} threads={threads}: {args.n / elapsed:8.1f} texts/s")
        graders = load_classifier_graders(embedder=embedder)
        batch = items(args.n)
        start = time.perf_counter()
        for grader in graders.values():
            grader.grade_many(batch)
        elapsed = time.perf_counter() - start
        print(f"grade {len(graders)} heads, half long  threads={threads}: {args.n / elapsed:8.1f} items/s "
              f"({args.n * len(graders) / elapsed:.0f} judgments/s)")


if __name__ == "__main__":
    main()
