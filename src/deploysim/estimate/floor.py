"""The measurement floor of n graded items (DESIGN.md "Definitions": measurement floor).

DESIGN.md: "with n prefixes a rate below about 3/n is indistinguishable from 0". Precisely,
the floor at confidence c is the rate p at which seeing zero events in n independent items
still has probability 1 − c:

    (1 − p)^n = 1 − c   ⇔   floor = 1 − (1 − c)^{1/n}  ≈  −ln(1 − c)/n  = 2.996/n at c = 0.95.

For every rate below the floor, zero events has probability above 5% (so an observed zero
cannot rule the rate out), and the floor equals the one-sided 95% (two-sided 90%) upper
Clopper–Pearson bound at k = 0 (the "rule of three"). The exact form is used so that tiny n
stay below 1; for n ≥ 100 it differs from −ln(0.05)/n by less than 1.5%. Below the floor,
rates are forecast with the Gumbel-tail method (:mod:`deploysim.estimate.tail`) instead.
"""

from __future__ import annotations

import math


def measurement_floor(n: int, confidence: float = 0.95) -> float:
    """The rate below which zero events in ``n`` items has probability above 1 − confidence:
    1 − (1 − confidence)^{1/n} ≈ −ln(1 − confidence)/n ≈ 3/n."""
    _check(confidence)
    if n <= 0:
        raise ValueError("n must be a positive count of graded items")
    return -math.expm1(math.log1p(-confidence) / n)


def items_for_floor(target_rate: float, confidence: float = 0.95) -> int:
    """Smallest n whose measurement floor is at most ``target_rate``: the fewest items with
    which a category at that rate is expected to show up at all (zero events then has
    probability at most 1 − confidence)."""
    _check(confidence)
    if not 0.0 < target_rate < 1.0:
        raise ValueError(f"target rate must be in (0, 1), got {target_rate}")
    n = max(1, math.ceil(math.log1p(-confidence) / math.log1p(-target_rate)))
    while measurement_floor(n, confidence) > target_rate:  # guards float rounding at the boundary
        n += 1
    return n


def _check(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
