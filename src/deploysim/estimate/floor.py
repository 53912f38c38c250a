"""The measurement floor of n graded items (DESIGN.md "Definitions": measurement floor).

DESIGN.md: "with n prefixes a rate below about 3/n is indistinguishable from 0". Precisely,
with a perfect grader the floor at confidence c is the rate p at which seeing zero events in n
independent items still has probability 1 − c:

    (1 − p)^n = 1 − c   ⇔   floor = 1 − (1 − c)^{1/n}  ≈  −ln(1 − c)/n  = 2.996/n at c = 0.95.

For every rate below it, zero events has probability above 5% (so an observed zero cannot rule
the rate out); it equals the one-sided 95% upper Clopper–Pearson bound at k = 0 ("rule of
three"). The exact form keeps tiny n below 1; for n ≥ 100 it is within 1.5% of −ln(0.05)/n.

**A grader with false positives.** A grader with false-positive rate f = 1 − sp and
sensitivity se flags an item with probability q(π) = π·se + (1 − π)·f, so flags appear even
when the behaviour never does. Generalising the definition above — the floor is the smallest
true rate that a level-(1 − c) test of "π = 0" detects with probability c:

    c* = smallest count with P(K ≥ c* | q = f) ≤ 1 − c   (K ~ Binomial(n, q)),
    q* = the q with P(K ≥ c* | q) = c  = I⁻¹_c(c*, n − c* + 1)  (inverse regularised beta),
    floor = (q* − f)/(se − f).

With f = 0 and se = 1 this is exactly the formula above (c* = 1). With f > 0 the floor grows
like 2·z_c·√(f/n)/(se − f) instead of 3/n: at n = 10⁵, f = 1% and se = 1 it is 1.08·10⁻³,
36 times the perfect-grader floor. f is taken as known (the validation's point estimate); its
own uncertainty raises the floor further.

**Below the floor.** A rate estimate is below the floor when the corrected point estimate
(r̂ − f)/(se − f) — r̂ itself for a perfect grader — is below the floor: the data cannot tell it
from 0 (with a perfect grader: k/n < floor, i.e. k ≤ 2 for most n). Such a rate is still
reported with its interval; the Gumbel-tail method (:mod:`deploysim.estimate.tail`) forecasts
something else — the *worst-query risk* (the elicitation probability of the riskiest of n
queries) and the share of queries above a probability threshold — not the rate.
"""

from __future__ import annotations

import math

from scipy import special, stats


def measurement_floor(n: int, confidence: float = 0.95, false_positive_rate: float = 0.0,
                      sensitivity: float = 1.0) -> float:
    """The smallest true rate a level-(1 − confidence) test of π = 0 detects with probability
    ``confidence`` among ``n`` items, for a grader with the given false-positive rate and
    sensitivity (module docstring); 1 − (1 − confidence)^{1/n} ≈ 3/n for a perfect grader."""
    _check(confidence)
    if n <= 0:
        raise ValueError("n must be a positive count of graded items")
    if not 0.0 <= false_positive_rate < 1.0 or not 0.0 < sensitivity <= 1.0:
        raise ValueError(f"need 0 <= false-positive rate < 1 and 0 < sensitivity <= 1, got "
                         f"{false_positive_rate}, {sensitivity}")
    if sensitivity <= false_positive_rate:
        raise ValueError(f"grader is uninformative: sensitivity {sensitivity} <= false-positive rate "
                         f"{false_positive_rate}")
    if false_positive_rate == 0.0:
        return -math.expm1(math.log1p(-confidence) / n) / sensitivity
    critical = int(stats.binom.ppf(confidence, n, false_positive_rate)) + 1
    if critical > n:
        return 1.0
    q = float(special.betaincinv(critical, n - critical + 1, confidence))
    return min(1.0, (q - false_positive_rate) / (sensitivity - false_positive_rate))


def below_floor(k: int, n: int, floor: float, false_positive_rate: float = 0.0,
                sensitivity: float = 1.0) -> bool:
    """Whether the corrected point estimate (k/n − f)/(se − f) lies below ``floor``."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    return (k / n - false_positive_rate) / (sensitivity - false_positive_rate) < floor


def items_for_floor(target_rate: float, confidence: float = 0.95) -> int:
    """Smallest n whose (perfect-grader) measurement floor is at most ``target_rate``: the
    fewest items with which a category at that rate is expected to show up at all (zero
    events then has probability at most 1 − confidence)."""
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
