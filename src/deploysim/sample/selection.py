"""Choosing eligible turns: cap per conversation, strata, reservoirs, final order (pure).

Scheme (documented for users in docs/sources-and-sampling.md):

* **Cap c per conversation.** A conversation with m > c usable turns keeps a uniformly
  random subset of c of them (``random.sample``); the others are not candidates. Sampling is
  then uniform over the capped population of N′ = Σ_j min(m_j, c) turns, so a turn of
  conversation j is drawn with probability min(1, c/m_j)·k/N′ and no conversation gives
  more than c prefixes.
* **Uniform.** One reservoir of k over all candidate turns of the corpus in stream order.
* **Stratified.** One reservoir per stratum of size n_h (explicit quotas, or proportional
  allocation computed from counted strata sizes); within a stratum the draw is uniform.
* **Order.** The selected turns are shuffled with their own seeded generator, so any leading
  part of the output is itself a uniform sample (useful when a run is stopped early).

Every random choice comes from ``random.Random`` streams seeded from ``(seed, purpose)``:
the same seed and the same input give the same prefixes in the same order.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deploysim.sample.reservoir import Reservoir


def seeded_rng(seed: int, purpose: str) -> random.Random:
    """An independent, reproducible generator for one use (str seeds hash with SHA-512)."""
    return random.Random(f"deploysim-sample/{seed}/{purpose}")


@dataclass(frozen=True, slots=True)
class Pick:
    ref: Any  # whatever the caller offered to identify the conversation
    turn: int  # message index of the sampled user turn
    stratum: str | None


class TurnSelector:
    """Feed it each conversation's usable turns once (in a fixed order); read :meth:`picks`.

    ``quotas`` None means one uniform reservoir of ``n``; otherwise one reservoir per stratum
    of its quota, and turns of strata without a quota are counted in :attr:`outside` only.
    """

    def __init__(self, *, n: int, seed: int, cap: int | None = None,
                 quotas: Mapping[str, int] | None = None) -> None:
        self.seed = seed
        self.cap = cap
        self._cap_rng = seeded_rng(seed, "cap")
        self._single = Reservoir(n, seeded_rng(seed, "reservoir")) if quotas is None else None
        self._strata = {h: Reservoir(q, seeded_rng(seed, f"stratum/{h}"))
                        for h, q in (quotas or {}).items()}
        self.population = 0  # candidate turns after the cap (N′), inside quotas
        self.stratum_population: dict[str, int] = {}
        self.outside = 0

    def add(self, ref: Any, turns: list[int], stratum: str | None = None) -> None:
        m = len(turns)
        if not m:
            return
        if self.cap is not None and m > self.cap:
            turns = sorted(self._cap_rng.sample(turns, self.cap))
            m = self.cap
        res = self._single
        if res is None:
            if stratum is None or (res := self._strata.get(stratum)) is None:
                self.outside += m
                return
            self.stratum_population[stratum] = self.stratum_population.get(stratum, 0) + m
        self.population += m
        picks = res.offer(m)
        if picks:
            items = res.items
            for slot, j in picks:
                items[slot] = (ref, turns[j])

    def picks(self) -> list[Pick]:
        """The selected turns in their final (seeded, shuffled) order."""
        if self._single is not None:
            chosen = [Pick(ref, turn, None) for ref, turn in self._single.sample()]
        else:
            chosen = [Pick(ref, turn, h) for h in sorted(self._strata)
                      for ref, turn in self._strata[h].sample()]
        seeded_rng(self.seed, "order").shuffle(chosen)
        return chosen

    def sampled_per_stratum(self) -> dict[str, int]:
        return {h: len(r.sample()) for h, r in sorted(self._strata.items())}
