"""Proportional allocation of a sample over strata (pure)."""

from __future__ import annotations

from collections.abc import Mapping


def proportional_allocation(n: int, population: Mapping[str, int]) -> dict[str, int]:
    """Largest-remainder (Hamilton) allocation of ``n`` draws over strata of sizes N_h.

    n_h = floor(n·N_h/N) plus one for the strata with the largest remainders
    n·N_h/N − floor(n·N_h/N) (ties broken by stratum name) until Σ n_h = n. Since
    n·N_h/N < N_h when n < N, n_h ≤ N_h always; when n ≥ N every stratum is taken whole.
    """
    if n < 0:
        raise ValueError("n must be non-negative")
    total = sum(population.values())
    if n >= total:
        return dict(population)
    base = {h: n * size // total for h, size in population.items()}
    short = n - sum(base.values())
    # remainder of n·N_h/N, compared exactly as integers (n·N_h mod N)
    order = sorted(population, key=lambda h: (-(n * population[h] % total), h))
    for h in order[:short]:
        base[h] += 1
    return base
