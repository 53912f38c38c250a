"""Demo corpus generation speed: conversations per second, plain JSONL and gzip.

Writes seeded corpora of the given sizes into a temporary folder (removed afterwards) and
prints, per size and compression, wall time, conversations/s, MB written and the number of
eligible turns. Target: a few thousand conversations well under a second or two; 100,000 in
seconds. Usage::

    .venv/bin/python benchmarks/demo_corpus.py [--sizes 3000 100000] [--window baseline]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from deploysim.demo import generate_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[3000, 100_000])
    parser.add_argument("--window", default="baseline", choices=("baseline", "release"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            for suffix in (".jsonl", ".jsonl.gz"):
                path = Path(tmp) / f"demo{suffix}"
                start = time.perf_counter()
                stats = generate_corpus(path, n=n, seed=args.seed, window=args.window)
                elapsed = time.perf_counter() - start
                print(f"n={n:>7} {suffix:<9} {elapsed:6.2f} s  {n / elapsed:8.0f} conversations/s  "
                      f"{path.stat().st_size / 1e6:7.1f} MB  {stats.eligible_turns} eligible turns")


if __name__ == "__main__":
    main()
