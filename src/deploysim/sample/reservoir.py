"""Reservoir sampling over a stream offered in blocks (pure; randomness from the caller).

Algorithm L (Li 1994, "Reservoir-sampling algorithms of time complexity O(n(1 + log(N/n)))"):
after the first k items, each selected item goes to a uniformly random slot and the gap to
the next selected item is drawn directly,
  W ← W·exp(log(U)/k),  gap = floor(log(U′)/log(1 − W)),
so the cost is one comparison per block plus the work per *selected* item, and every
k-subset of the stream is equally likely. The recurrences do not depend on the stream, so
they are evaluated ahead, ``BATCH`` selections at a time, with numpy (cumulative sums of the
log-terms for W and for the positions): per selected item only a comparison and an append
are left in Python, which matters when a large share of the items is selected (large
samples, or a stream cut into parts). Blocks are a conversation's eligible turns: a
conversation with m turns advances the stream by m at once.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np

_NONE: tuple[tuple[int, int], ...] = ()
#: selections computed ahead at a time
BATCH = 1024


class Reservoir:
    """Uniform sample of ``k`` items from a stream of unknown length, O(k) memory.

    The caller offers blocks with :meth:`offer` and stores what it wants at the returned
    slots; :attr:`items` holds the current sample (``None`` in unfilled slots). ``rng``
    seeds the reservoir's own numpy generator, so a seeded ``rng`` gives a reproducible draw.
    """

    __slots__ = ("_at", "_following", "_gen", "_positions", "_slots", "_w", "items", "k", "next", "seen")

    def __init__(self, k: int, rng: random.Random) -> None:
        if k < 0:
            raise ValueError("k must be non-negative")
        self.k = k
        self.items: list[Any] = [None] * k
        self.seen = 0  # stream items offered so far
        self.next: float = 0 if k else math.inf  # stream index of the next item to select
        self._gen = np.random.default_rng(rng.getrandbits(128))
        self._w = 1.0  # W after the last selection computed ahead
        self._positions: list[float] = []  # stream indices of the selections computed ahead
        self._slots: list[int] = []  # ... and their slots
        self._at = 0  # the next of them
        self._following = math.inf  # stream index of the selection after them

    def offer(self, m: int) -> tuple[tuple[int, int], ...] | list[tuple[int, int]]:
        """Offer the next ``m`` stream items; return ``(slot, j)`` pairs meaning "item j of
        this block goes into slot" (applied in order, a later pair may overwrite a slot)."""
        lo = self.seen
        hi = self.seen = lo + m
        if self.next >= hi:
            return _NONE
        k = self.k
        if hi < k:  # still filling: every item is taken, in order
            self.next = hi
            return [(lo + j, j) for j in range(m)]
        picks: list[tuple[int, int]] = []
        if lo < k:  # the end of the fill, then the first W and gap
            picks = [(index, index - lo) for index in range(lo, k)]
            u = 1.0 - self._gen.random(2)
            self._w = math.exp(math.log(u[0]) / k)
            self._ahead(k + _gap(u[1], self._w))
        positions, slots, at = self._positions, self._slots, self._at
        position = positions[at]
        while position < hi:
            picks.append((slots[at], int(position) - lo))
            at += 1
            if at == BATCH:
                self._ahead(self._following)
                positions, slots, at = self._positions, self._slots, 0
            position = positions[at]
        self._at, self.next = at, position
        return picks

    def _ahead(self, first: float) -> None:
        """Compute the next ``BATCH`` selections, the first one at stream index ``first``:
        selection j goes to slot floor(U·k); after it W_j = W_{j-1}·exp(log(U′)/k) and the
        next selection is at p_j + floor(log(U″)/log(1 − W_j)) + 1."""
        k = self.k
        u = 1.0 - self._gen.random((3, BATCH))  # in (0, 1]
        w = np.exp((math.log(self._w) if self._w > 0.0 else -math.inf) + np.cumsum(np.log(u[1]) / k))
        # W == 1 gives a gap of 0 (the very next item); a tiny W an infinite one (never again)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            gaps = np.floor(np.log(u[2]) / np.log1p(-w))
            ends = first + np.cumsum(gaps + 1.0)  # where the selection after each one is
        self._positions = [first, *ends[:-1].tolist()]
        self._slots = np.minimum((1.0 - u[0]) * k, k - 1).astype(np.int64).tolist()
        self._following = float(ends[-1])
        self._w = float(w[-1])
        self._at = 0

    def sample(self) -> list[Any]:
        """The current sample (all items when fewer than ``k`` were offered)."""
        return self.items[: min(self.k, self.seen)]


def _gap(u: float, w: float) -> float:
    """Items skipped before the next selected one, for W = ``w`` and a uniform ``u`` in (0, 1]."""
    if w >= 1.0:
        return 0.0
    if w <= 0.0:
        return math.inf
    return float(math.floor(math.log(u) / math.log1p(-w)))
