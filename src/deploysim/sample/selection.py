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
* **Parts.** A stream read in several independent parts (spans of a large file read by
  worker processes) gives each part its own selector, hence a uniform sample of
  min(k_i, N_i) of its N_i candidates. They combine exactly: the numbers taken from each
  part follow the multivariate hypergeometric distribution (the split of a uniform k-subset
  of all N = Σ N_i candidates), :func:`hypergeometric_split`, and each part gives a uniform
  subset of its sample of that size, :func:`choose_from_parts` (a part whose sample is
  smaller than its share is sampled again first). The union is then a uniform k-subset
  of the whole stream. A conversation lies in one part, so the cap is applied exactly;
  strata are merged one by one with their quotas.
* **Order.** The selected turns are shuffled with their own seeded generator, so any leading
  part of the output is itself a uniform sample (useful when a run is stopped early).

Every random choice comes from ``random.Random`` streams seeded from ``(seed, purpose)``:
the same seed and the same input give the same prefixes in the same order.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import numpy as np

from deploysim.sample.reservoir import Reservoir


def seeded_rng(seed: int, purpose: str) -> random.Random:
    """An independent, reproducible generator for one use (str seeds hash with SHA-512)."""
    return random.Random(f"deploysim-sample/{seed}/{purpose}")


@dataclass(frozen=True, slots=True)
class Pick:
    ref: Any  # whatever the caller offered to identify the conversation
    turn: int  # message index of the sampled user turn
    stratum: str | None
    #: the conversation's usable turns m_j before the cap (its design weight has max(1, m_j/c))
    usable: int = 1


class TurnSelector:
    """Feed it each conversation's usable turns once (in a fixed order); read :meth:`picks`.

    ``quotas`` None means one uniform reservoir of ``n``; otherwise one reservoir per stratum
    of its quota, and turns of strata without a quota are counted in :attr:`outside` only.
    ``part`` names the part of the stream this selector sees (its random streams are its own).
    """

    def __init__(self, *, n: int, seed: int, cap: int | None = None,
                 quotas: Mapping[str, int] | None = None, part: str = "") -> None:
        self.seed = seed
        self.cap = cap
        self._cap_rng = seeded_rng(seed, f"{part}cap")
        self._single = Reservoir(n, seeded_rng(seed, f"{part}reservoir")) if quotas is None else None
        self._strata = {h: Reservoir(q, seeded_rng(seed, f"{part}stratum/{h}"))
                        for h, q in (quotas or {}).items()}
        self.outside = 0  # candidate turns of strata without a quota

    def add(self, ref: Any, turns: list[int], stratum: str | None = None) -> None:
        """Offer one conversation's usable turns (message indices), identified by ``ref``."""
        picks = self.offer(len(turns), stratum)
        if picks:
            self.keep(picks, ref, turns, stratum)

    def offer(self, m: int, stratum: str | None = None) -> Sequence[tuple[int, int]]:
        """The first half of :meth:`add`, for callers whose ``ref`` is costly to make: offer
        a conversation of ``m`` usable turns; the returned picks (usually none) must be
        passed to :meth:`keep` with the conversation's ref and turns before the next offer."""
        if not m:
            return ()
        cap = self.cap
        if cap is not None and m > cap:
            m = cap
        res = self._single
        if res is None and (stratum is None or (res := self._strata.get(stratum)) is None):
            self.outside += m
            return ()
        return res.offer(m)

    @property
    def offer_uncapped(self) -> Callable[[int], Sequence[tuple[int, int]]]:
        """:meth:`offer` for a caller that has checked :attr:`plain`: the reservoir's own
        (one call less per conversation on the sampler's hot path)."""
        assert self.plain, "offer_uncapped needs a single reservoir and no cap"
        return self._single.offer  # type: ignore[union-attr]

    @property
    def plain(self) -> bool:
        """One reservoir, no cap: every offered turn goes straight to the reservoir."""
        return self._single is not None and self.cap is None

    @property
    def population(self) -> int:
        """Candidate turns after the cap (N′), inside quotas: what the reservoirs were offered."""
        if self._single is not None:
            return self._single.seen
        return sum(r.seen for r in self._strata.values())

    @property
    def stratum_population(self) -> dict[str, int]:
        return {h: r.seen for h, r in self._strata.items() if r.seen}

    def keep(self, picks: Sequence[tuple[int, int]], ref: Any, turns: list[int],
             stratum: str | None = None) -> None:
        """Store the conversation's picked turns. Over the cap, its c candidates are drawn
        here, only for a conversation that has picks: which turns are candidates does not
        depend on the reservoir's draw, so the sample stays uniform over the capped population."""
        m = len(turns)
        if self.cap is not None and m > self.cap:
            turns = sorted(self._cap_rng.sample(turns, self.cap))
        res = self._single if self._single is not None else self._strata[stratum]  # type: ignore[index]
        items = res.items
        for slot, j in picks:
            items[slot] = (ref, turns[j], m)

    def picks(self) -> list[Pick]:
        """The selected turns in their final (seeded, shuffled) order."""
        if self._single is not None:
            chosen = [Pick(ref, turn, None, m) for ref, turn, m in self._single.sample()]
        else:
            chosen = [Pick(ref, turn, h, m) for h in sorted(self._strata)
                      for ref, turn, m in self._strata[h].sample()]
        seeded_rng(self.seed, "order").shuffle(chosen)
        return chosen

    def sampled_per_stratum(self) -> dict[str, int]:
        return {h: len(r.sample()) for h, r in sorted(self._strata.items())}

    def samples(self) -> dict[str | None, tuple[int, list[tuple[Any, int]]]]:
        """Per stratum (None when not stratified): its candidate count and its reservoir's
        ``(ref, turn, usable turns)`` items, in slot order (the input of :func:`choose_from_parts`)."""
        if self._single is not None:
            return {None: (self.population, self._single.sample())}
        return {h: (r.seen, r.sample()) for h, r in sorted(self._strata.items())}


#: numpy's multivariate hypergeometric sampler takes populations below this
_NUMPY_HYPERGEOMETRIC_LIMIT = 10**9


def hypergeometric_split(populations: Sequence[int], k: int, gen: np.random.Generator) -> list[int]:
    """How many of a uniform k-subset of Σ N_i items fall in each part of sizes N_i (the
    multivariate hypergeometric distribution). All parts are taken whole when k >= N."""
    total = sum(populations)
    if k >= total:
        return list(populations)
    if total < _NUMPY_HYPERGEOMETRIC_LIMIT:
        return [int(x) for x in gen.multivariate_hypergeometric(list(populations), k, method="marginals")]
    # beyond numpy's range: draw the subset's positions and count them per part
    bounds = list(accumulate(populations))
    counts = [0] * len(populations)
    for position in random.Random(int(gen.integers(2**63))).sample(range(total), k):
        counts[bisect_right(bounds, position)] += 1
    return counts


def choose_from_parts(sizes: Sequence[int], split: Sequence[int],
                      gen: np.random.Generator) -> list[np.ndarray]:
    """Per part, a uniform subset of ``split[i]`` of the indices of its sample of ``sizes[i]``.

    A part may bring a sample smaller than k (a reservoir sized to the part's expected share,
    uniform over its N_i items): the merge stays exact as long as the part's sample holds at
    least its share of the split, which the split does not depend on.
    """
    for size, m in zip(sizes, split, strict=True):
        if m > size:
            raise ValueError(f"a part's sample of {size} cannot give the {m} items the split asks of it")
    return [gen.choice(size, m, replace=False) for size, m in zip(sizes, split, strict=True)]


def seeded_generator(seed: int, purpose: str) -> np.random.Generator:
    """A numpy generator seeded from :func:`seeded_rng` (for bulk draws)."""
    return np.random.default_rng(seeded_rng(seed, purpose).getrandbits(128))
