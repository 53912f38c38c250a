"""Accuracy of worst-query-risk forecasts at 100x the evaluated volume, Gumbel tail vs log-normal.

    .venv/bin/python benchmarks/tail_study.py [--reps 1000] [--queries 1000] [--seed 0]

Synthetic queries with elicitation scores ψ ~ Gumbel(mu, beta) (p = exp(−e^{−ψ})): each
replication evaluates m queries, forecasts the riskiest of 100·m with both methods, and compares
with the realised maximum of 100·m fresh queries (drawn exactly: Gumbel(mu + beta·log n, beta)).
Prints, per scenario and top-k, the share of forecasts within one order of magnitude and the
median signed error in decades (positive = over-forecast); then, per scenario, how often the 90%
percentile-bootstrap interval of the Gumbel forecast covered the realised worst query
(``--interval-reps`` runs of ``--bootstrap`` refits); then the repeated-sampling case: queries
scored from s hits in K samples, (s + ½)/(K + 1), where most queries tie at ½/(K + 1) — the old
fit on those tied values against the tie-aware fit (which refuses when fewer than 3 distinct
levels remain).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from deploysim.estimate.tail import (
    bootstrap_worst_query_risk,
    elicitation_scores,
    fit_gumbel_tail,
    forecast_tail,
    gumbel_worst_query_risk,
    smoothed_probability,
)

SCENARIOS = ((-2.0, 0.2), (-2.2, 0.1), (-2.67, 0.1), (-3.0, 0.1), (-3.5, 0.1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--interval-reps", type=int, default=200)
    parser.add_argument("--bootstrap", type=int, default=200)
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
                forecast = forecast_tail(p, n, top=top, interval_replications=0)
                truth = math.exp(-math.exp(-rng.gumbel(mu + beta * math.log(n), beta)))
                truths.append(truth)
                errors_g.append(math.log10(forecast.gumbel_worst_query_risk / truth))
                errors_l.append(math.log10(forecast.lognormal_worst_query_risk / truth))
            g, ln = np.array(errors_g), np.array(errors_l)
            print(f"{mu:>6} {beta:>5} {top:>4} {np.median(truths):>13.2g} {np.mean(np.abs(g) <= 1):>14.1%} "
                  f"{np.mean(np.abs(ln) <= 1):>10.1%} {np.median(g):>+12.2f} {np.median(ln):>+8.2f}")
    print(f"\n90% bootstrap interval of the Gumbel forecast (top 10): coverage of the realised worst query, "
          f"{args.interval_reps} runs x {args.bootstrap} refits")
    for mu, beta in SCENARIOS:
        rng = np.random.default_rng(args.seed)
        hits = failed = 0
        widths = []
        for i in range(args.interval_reps):
            p = np.exp(-np.exp(-rng.gumbel(mu, beta, m)))
            interval = bootstrap_worst_query_risk(p, n, 10, args.bootstrap, 0.9, seed=i)
            truth = math.exp(-math.exp(-rng.gumbel(mu + beta * math.log(n), beta)))
            hits += interval.lower <= truth <= interval.upper
            failed += interval.failed
            widths.append(math.log10(interval.upper / interval.lower))
        failed_share = failed / (args.interval_reps * args.bootstrap)
        print(f"  mu {mu:>5} beta {beta:>4}: coverage {hits / args.interval_reps:.1%}, median width "
              f"{np.median(widths):.2f} decades, failed refits {failed_share:.1%}")
    print("\nrepeated sampling, K samples per query (smoothed (s + ½)/(K + 1)), top 10: old fit on tied "
          "values vs tie-aware fit")
    for mu, beta in SCENARIOS[1:]:
        for samples in (20, 100):
            rng = np.random.default_rng(args.seed)
            old, new, refused = [], [], 0
            for _ in range(args.interval_reps):
                p = np.exp(-np.exp(-rng.gumbel(mu, beta, m)))
                smoothed = smoothed_probability(rng.binomial(samples, p), samples)
                truth = math.exp(-math.exp(-rng.gumbel(mu + beta * math.log(n), beta)))
                head = np.sort(elicitation_scores(smoothed))[::-1][:10]
                if np.ptp(head) > 0:
                    slope, intercept = np.polyfit(head, np.log(np.arange(1, 11) / m), 1)
                    if slope < 0:
                        old.append(math.log10(math.exp(-math.exp((math.log(n) + intercept) / slope)) / truth))
                try:
                    fit = fit_gumbel_tail(smoothed, 10)
                except ValueError:
                    refused += 1
                    continue
                new.append(math.log10(gumbel_worst_query_risk(fit, n) / truth))
            old_text = f"{np.median(old):+.2f}" if old else "  n/a"
            new_text = f"{np.median(new):+.2f}" if new else "  n/a"
            print(f"  mu {mu:>5} beta {beta:>4} K {samples:>3}: old median error {old_text} decades "
                  f"({len(old)} fits), tie-aware {new_text} ({len(new)} fits), refused {refused}")
    print(f"elapsed {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
