"""Coverage study of the rate intervals: prints the full table and how long it took.

    .venv/bin/python benchmarks/coverage_study.py [--replications 20000] [--seed 0]

Grid: rates 1e-4 … 0.2 × n 1e3 … 1e5 (1-3-10 steps); per cell the simulated coverage of the
nominal 95% Wilson, Jeffreys and Clopper–Pearson intervals (seeded binomial draws) with the
exact coverage in brackets; then, per method, the range of exact coverage over a dense scan
of rates with n·p >= 5 (coverage oscillates with p, so a grid can miss the extremes).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from deploysim.estimate.coverage import coverage_table, exact_coverage, format_coverage_table

RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.2)
SIZES = (1_000, 3_000, 10_000, 30_000, 100_000)
METHODS = ("wilson", "jeffreys", "clopper_pearson")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    cells = coverage_table(RATES, SIZES, METHODS, args.replications, seed=args.seed)
    elapsed = time.perf_counter() - start
    print(format_coverage_table(cells))
    print(f"{len(cells)} cells x {args.replications:,} replications (+ exact coverage) in {elapsed:.2f} s")
    for method in METHODS:
        eligible = [c for c in cells if c.method == method and c.expected_events >= 5]
        outside = [c for c in eligible if not 0.93 <= c.simulated <= 0.97]
        print(f"{method}: {len(eligible)} cells with n·p >= 5, simulated coverage "
              f"{min(c.simulated for c in eligible):.3f}–{max(c.simulated for c in eligible):.3f}, "
              f"{len(outside)} outside 93–97%")
    print("\ndense scan of exact coverage, n·p >= 5 (200 log-spaced rates up to 0.2):")
    for n in (1_000, 10_000):
        for method in METHODS:
            values = [exact_coverage(method, r, n) for r in np.geomspace(5 / n, 0.2, 200)]
            print(f"  n = {n:>6,}  {method:<16} min {min(values):.3f}  max {max(values):.3f}")


if __name__ == "__main__":
    main()
