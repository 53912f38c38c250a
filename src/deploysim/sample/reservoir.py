"""Reservoir sampling over a stream offered in blocks (pure; randomness from the caller).

Algorithm L (Li 1994, "Reservoir-sampling algorithms of time complexity O(n(1 + log(N/n)))"):
after the first k items the gap to the next selected item is drawn directly,
  W ← W·exp(log(U)/k),  gap = floor(log(U′)/log(1 − W)),
so the cost is one comparison per block plus a few draws per *selected* item, and every
k-subset of the stream is equally likely. Blocks are a conversation's eligible turns: a
conversation with m turns advances the stream by m at once.
"""

from __future__ import annotations

import math
import random
from typing import Any

_NONE: tuple[tuple[int, int], ...] = ()


class Reservoir:
    """Uniform sample of ``k`` items from a stream of unknown length, O(k) memory.

    The caller offers blocks with :meth:`offer` and stores what it wants at the returned
    slots; :attr:`items` holds the current sample (``None`` in unfilled slots).
    """

    __slots__ = ("_rng", "_w", "items", "k", "next", "seen")

    def __init__(self, k: int, rng: random.Random) -> None:
        if k < 0:
            raise ValueError("k must be non-negative")
        self.k = k
        self.items: list[Any] = [None] * k
        self.seen = 0  # stream items offered so far
        self.next = 0 if k else math.inf  # stream index of the next item to select
        self._w = 1.0
        self._rng = rng

    def offer(self, m: int) -> tuple[tuple[int, int], ...] | list[tuple[int, int]]:
        """Offer the next ``m`` stream items; return ``(slot, j)`` pairs meaning "item j of
        this block goes into slot" (applied in order, a later pair may overwrite a slot)."""
        lo = self.seen
        hi = self.seen = lo + m
        nxt = self.next
        if nxt >= hi:
            return _NONE
        k = self.k
        if hi < k:  # still filling: every item is taken, in order
            self.next = hi
            return [(lo + j, j) for j in range(m)]
        rand, log, exp, w = self._rng.random, math.log, math.exp, self._w
        picks: list[tuple[int, int]] = []
        while nxt < hi:
            index = int(nxt)
            if index < k:
                picks.append((index, index - lo))
                if index < k - 1:
                    nxt = index + 1
                    continue
                w = exp(log(1.0 - rand()) / k)  # end of the fill: first W
            else:
                picks.append((int(rand() * k), index - lo))
                w *= exp(log(1.0 - rand()) / k)
            # gap to the next selected item; W == 1 only if the draw was exactly 0
            nxt = index + 1 if w >= 1.0 else index + math.floor(log(1.0 - rand()) / math.log1p(-w)) + 1
        self.next, self._w = nxt, w
        return picks

    def sample(self) -> list[Any]:
        """The current sample (all items when fewer than ``k`` were offered)."""
        return self.items[: min(self.k, self.seen)]
