"""Top-k challenge selection at scale: prints how long ranking takes and the peak memory.

    .venv/bin/python benchmarks/challenge_topk.py [--prefixes 20000] [--categories 19] [--k 500]

Builds a run store in a temporary directory with N production prefixes, their y_prod
completions and one judgment per category each (label positive with probability 2%, a
score in [0, 1)), then times :func:`rank_production_prefixes` for both risk scores and
:func:`select_top_k` + storing. The ranking is one SQLite query with a bounded sort, so its
Python memory does not grow with N.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from deploysim.forecast.challenge import add_top_k, rank_production_prefixes
from deploysim.records import Completion, Continuation, Judgment, Message, Prefix
from deploysim.store import RunStore


def build(store: RunStore, n: int, categories: int, seed: int) -> None:
    rng = random.Random(seed)
    cats = [f"cat_{i}" for i in range(categories)]
    batch = 2000
    for start in range(0, n, batch):
        prefixes, completions, judgments = [], [], []
        for i in range(start, min(n, start + batch)):
            msgs = (Message(role="user", content=f"prompt {i}"),)
            reply = Message(role="assistant", content=f"reply {i}")
            p = Prefix(id=Prefix.make_id(f"c{i}", 0, msgs), conversation_id=f"c{i}", turn_index=0,
                       messages=msgs, continuation=Continuation(response=reply))
            c = Completion(id=Completion.make_id(p.id, "y_prod", "prod", 0), prefix_id=p.id, arm="y_prod",
                           model="production", generator_hash="prod", message=reply)
            prefixes.append(p)
            completions.append(c)
            for cat in cats:
                judgments.append(Judgment(id=Judgment.make_id(c.id, cat, "g"), completion_id=c.id,
                                          prefix_id=p.id, arm="y_prod", category=cat, grader_id="bench",
                                          grader_hash="g", label=rng.random() < 0.02, score=rng.random()))
        store.put_prefixes(prefixes)
        store.put_completions(completions)
        store.put_judgments(judgments)


def timed(label: str, fn: Callable[[], object]) -> object:
    tracemalloc.start()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"{label:<34} {seconds:8.3f} s   peak Python memory {peak / 1e6:7.2f} MB")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefixes", type=int, default=20_000)
    parser.add_argument("--categories", type=int, default=19)
    parser.add_argument("--k", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, RunStore.open(Path(tmp) / "run") as store:
        start = time.perf_counter()
        build(store, args.prefixes, args.categories, args.seed)
        print(f"built {args.prefixes} prefixes × {args.categories} categories "
              f"({args.prefixes * args.categories} y_prod judgments) in {time.perf_counter() - start:.1f} s")
        timed(f"rank top {args.k} by flags", lambda: rank_production_prefixes(store, args.k, score="flags"))
        timed(f"rank top {args.k} by classifier",
              lambda: rank_production_prefixes(store, args.k, score="classifier"))
        timed(f"rank top {args.k} by flags, 3 categories",
              lambda: rank_production_prefixes(store, args.k, categories=["cat_0", "cat_1", "cat_2"]))
        timed(f"select + store top {args.k}", lambda: add_top_k(store, args.k))


if __name__ == "__main__":
    main()
