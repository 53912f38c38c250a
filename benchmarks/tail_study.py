"""Accuracy of worst-query-risk forecasts at 100x the evaluated volume, Gumbel tail vs log-normal.

    .venv/bin/python benchmarks/tail_study.py [--reps 1000] [--queries 1000] [--seed 0]

Synthetic queries with elicitation scores ψ ~ Gumbel(mu, beta) (p = exp(−e^{−ψ})): each
replication evaluates m queries, forecasts the riskiest of 100·m with both methods, and compares
with the realised maximum of 100·m fresh queries (drawn exactly: Gumbel(mu + beta·log n, beta)).
Prints, per scenario and top-k, the share of forecasts within one order of magnitude and the
median signed error in decades (positive = over-forecast).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from deploysim.estimate.tail import forecast_tail

SCENARIOS = ((-2.0, 0.2), (-2.2, 0.1), (-2.67, 0.1), (-3.0, 0.1), (-3.5, 0.1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    m, n = args.queries, 100 * args.queries
    print(f"{m:,} evaluated queries -> forecast at {n:,}; {args.reps} replications per row")
    print(f"{'mu':>6} {'beta':>5} {'top':>4} {'median truth':>13} {'Gumbel ≤1 dec':>14} {'LN ≤1 dec':>10} "
          f"{'Gumbel bias':>12} {'LN bias':>8}")
    start = time.perf_counter()
    for mu, beta in SCENARIOS:
        for top in (10, 50):
            rng = np.random.default_rng(args.seed)
            errors_g, errors_l, truths = [], [], []
            for _ in range(args.reps):
                p = np.exp(-np.exp(-rng.gumbel(mu, beta, m)))
                forecast = forecast_tail(p, n, top=top)
                truth = math.exp(-math.exp(-rng.gumbel(mu + beta * math.log(n), beta)))
                truths.append(truth)
                errors_g.append(math.log10(forecast.gumbel_worst_query_risk / truth))
                errors_l.append(math.log10(forecast.lognormal_worst_query_risk / truth))
            g, ln = np.array(errors_g), np.array(errors_l)
            print(f"{mu:>6} {beta:>5} {top:>4} {np.median(truths):>13.2g} {np.mean(np.abs(g) <= 1):>14.1%} "
                  f"{np.mean(np.abs(ln) <= 1):>10.1%} {np.median(g):>+12.2f} {np.median(ln):>+8.2f}")
    print(f"elapsed {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
