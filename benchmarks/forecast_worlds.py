"""Synthetic-world study of the forecast methods: prints the table reported in docs/forecasting.md.

    .venv/bin/python benchmarks/forecast_worlds.py [--worlds 100] [--seed 0] [--sigmas 0 0.5 1]
        [--shared 0.5] [--past-releases 2] [--categories 20] [--n-sim 20000] [--n-prod 60000]

Each world is one release with realistic rates (10⁻⁴–10⁻²), true changes, and simulated arms
distorted by per-category log-normal factors of sd σ, a share ``--shared`` of it common to X→Y
and Y→Y (deploysim.forecast.worlds documents the generator). The discrepancy τ is estimated from
``--past-releases`` earlier releases of the same world. Per σ and method it prints the mean total
NLL per world, the share of worlds whose NLL beats previous production, the median symmetric
error, pooled directional accuracy over moved categories with its Wilson 95% interval, and the
coverage of the 90% predictive interval of X's production count.
"""

from __future__ import annotations

import argparse
import time

from deploysim.forecast.worlds import WorldSettings, format_study, run_study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    parser.add_argument("--shared", type=float, default=0.5)
    parser.add_argument("--past-releases", type=int, default=2)
    parser.add_argument("--categories", type=int, default=20)
    parser.add_argument("--n-sim", type=int, default=20_000)
    parser.add_argument("--n-prod", type=int, default=60_000)
    args = parser.parse_args()
    start = time.perf_counter()
    results = []
    for sigma in args.sigmas:
        settings = WorldSettings(categories=args.categories, n_sim=args.n_sim, n_prod=args.n_prod,
                                 sigma=sigma, shared=args.shared, past_releases=args.past_releases)
        results.append(run_study(settings, args.worlds, seed=args.seed))
    print(format_study(results))
    print(f"elapsed {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
