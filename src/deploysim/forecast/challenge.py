"""The challenging-prompts baseline's inputs (DESIGN.md "Baselines": the rate of X on a
challenging, adversarially selected prompt set).

Two ways to build the set, both giving :class:`Prefix` records in the ``challenge`` pool (their
own ids, so they never enter the simulation's work list) that the simulate stage runs the
candidate on as arm ``challenge``:

- :func:`load_challenge_set`: a named set from a file (CSV in XSTest / HarmBench / AdvBench
  layout or with a ``prompt`` column, a prompt list, or conversations in any log format);
- :func:`select_top_k`: production prefixes selected adversarially, the top k by a risk
  score computed from the judgments of Y's production response (arm ``y_prod``).

:func:`store_challenge_set` writes either (idempotently) with a ``challenge`` stage report.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from deploysim.forecast.challenge_sets import (
    CHALLENGE_POOL,
    CSV_FORMATS,
    LOG_FORMATS,
    PROMPT_LIST,
    Item,
    SetOptions,
    challenge_prefix,
    is_prompt_list,
    read_csv_set,
    read_log_set,
    read_prompt_list,
)
from deploysim.forecast.config import ForecastConfig
from deploysim.records import Prefix, Quarantined
from deploysim.store import RunStore

DEFAULT_PRODUCT_CONTEXT = "general_chat"
FORMATS: tuple[str, ...] = ("auto", *CSV_FORMATS, PROMPT_LIST, *LOG_FORMATS)
TOP_K_STRATUM = "top_k"
RiskScore = Literal["flags", "classifier"]
_STORE_ORDER: dict[str, str] = {"flags": "flags", "classifier": "score"}


@dataclass(frozen=True)
class ChallengeSet:
    """A loaded set: ``read = accepted + len(quarantined)`` items (an item is a CSV or
    prompt-list row, or a conversation of a log; a log row the reader rejects is one item);
    ``prefixes`` are the accepted items, or ``limit`` of them drawn uniformly with ``seed``."""

    name: str
    path: Path
    style: str
    prefixes: list[Prefix]
    accepted: int
    quarantined: list[Quarantined]
    limit: int | None = None
    seed: int = 0
    reader_stats: dict[str, Any] = field(default_factory=dict)

    @property
    def read(self) -> int:
        return self.accepted + len(self.quarantined)

    def strata(self) -> dict[str, int]:
        """Prefixes per stratum (the set's category; ``-`` when the set has none)."""
        counts: dict[str, int] = {}
        for p in self.prefixes:
            counts[p.stratum or "-"] = counts.get(p.stratum or "-", 0) + 1
        return dict(sorted(counts.items()))

    def report(self) -> dict[str, Any]:
        reasons: dict[str, int] = {}
        for q in self.quarantined:
            reasons[q.reason] = reasons.get(q.reason, 0) + 1
        return {"kind": "set", "source": str(self.path), "style": self.style, "read": self.read,
                "accepted": self.accepted, "quarantined": len(self.quarantined),
                "quarantine_reasons": reasons, "limit": self.limit, "seed": self.seed,
                "selected": len(self.prefixes), "strata": self.strata(), **self.reader_stats}


def load_challenge_set(path: Path, *, fmt: str = "auto", limit: int | None = None, seed: int = 0,
                       name: str | None = None,
                       product_context: str = DEFAULT_PRODUCT_CONTEXT) -> ChallengeSet:
    """Read a challenging-prompt set file into challenge-pool prefixes.

    ``fmt``: ``auto`` (``.csv`` files by their header, else a prompt list or a log format by
    the first rows), ``csv`` (layout from the header), a CSV layout (``xstest``,
    ``harmbench``, ``advbench``, ``prompt_csv``), ``prompts`` (prompt list), or a log format
    of :mod:`deploysim.sources`. ``name`` (default: the file name without suffixes) prefixes
    ids built from the set's own ids. ``product_context`` applies where the file names none.
    Raises ValueError naming the file for an unknown format or CSV header.
    """
    path = Path(path)
    if fmt not in FORMATS:
        raise ValueError(f"{path}: unknown challenge-set format {fmt!r} (known: {', '.join(FORMATS)})")
    if limit is not None and limit <= 0:
        raise ValueError(f"limit must be positive, got {limit}")
    if not path.is_file():
        raise FileNotFoundError(f"challenge set {path} does not exist")
    opts = SetOptions(name=name or set_name(path), source=path.name, product_context=product_context)
    stats: dict[str, Any] = {}
    if fmt in CSV_FORMATS or (fmt == "auto" and path.suffix.lower() == ".csv"):
        style, items = read_csv_set(path, opts, "csv" if fmt == "auto" else fmt)
    elif fmt == PROMPT_LIST or (fmt == "auto" and is_prompt_list(path)):
        style, items = PROMPT_LIST, read_prompt_list(path, opts)
    else:
        reader, items = read_log_set(path, opts, fmt)
        style = "log"
    try:
        prefixes, accepted, quarantined = _sample(items, opts.source, limit, random.Random(seed))
    except ValueError as err:
        if style != "log" or fmt != "auto":
            raise
        raise ValueError(f"{err}. A challenge set may also be a CSV file (.csv) or a prompt list (rows "
                         "that are strings or objects with a 'prompt' string); --format forces one") from None
    if style == "log":
        style = f"log:{reader.stats.format}"
        stats = {"log_rows_read": reader.stats.read, "log_rows_accepted": reader.stats.accepted,
                 "log_rows_quarantined": reader.stats.quarantined}
    return ChallengeSet(name=opts.name, path=path, style=style, prefixes=prefixes, accepted=accepted,
                        quarantined=quarantined, limit=limit, seed=seed, reader_stats=stats)


def set_name(path: Path) -> str:
    """The file name without its format and compression suffixes (``x.jsonl.gz`` -> ``x``)."""
    name = path.name
    for suffix in (".gz", ".csv", ".jsonl", ".json", ".parquet"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return name


def _sample(items: Iterator[Item], source: str, limit: int | None,
            rng: random.Random) -> tuple[list[Prefix], int, list[Quarantined]]:
    """Accepted prefixes (a seeded reservoir of ``limit`` of them, kept in file order), their
    count before sampling, and quarantined items. A prefix identical to an earlier one (same
    id: same conversation id and text) is quarantined: stored, the two would silently
    collapse into one row."""
    kept: list[tuple[int, Prefix]] = []
    quarantined: list[Quarantined] = []
    first_line: dict[str, int] = {}
    accepted = 0
    for item in items:
        if isinstance(item, Quarantined):
            quarantined.append(item)
            continue
        line, prefix = item
        if prefix.id in first_line:
            quarantined.append(Quarantined(
                source=source, line=line, excerpt=prefix.messages[-1].content[:200],
                reason=f"duplicate of line {first_line[prefix.id]} (conversation {prefix.conversation_id})"))
            continue
        first_line[prefix.id] = line
        if limit is None or accepted < limit:
            kept.append((accepted, prefix))
        else:
            slot = rng.randrange(accepted + 1)
            if slot < limit:
                kept[slot] = (accepted, prefix)
        accepted += 1
    kept.sort(key=lambda pair: pair[0])
    return [p for _, p in kept], accepted, quarantined


@dataclass(frozen=True)
class RiskRank:
    """One production prefix's risk from its Y production judgments."""

    prefix_id: str
    flags: int  # distinct categories flagged positive
    max_score: float | None  # max grader score over the categories (None: no grader gave one)


def rank_production_prefixes(store: RunStore, k: int, *, score: RiskScore = "flags",
                             categories: Sequence[str] | None = None,
                             production_arm: str = "y_prod") -> list[RiskRank]:
    """The k highest-risk production prefixes by the ``ok`` judgments of their production
    response (arm ``production_arm``). ``flags``: number of categories flagged positive (only
    prefixes with at least
    one), ties broken by the max judgment score, then by prefix id. ``classifier``: max score
    over the categories (only prefixes with a score), ties by flags, then prefix id."""
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    if score not in _STORE_ORDER:
        raise ValueError(f"unknown risk score {score!r} (flags, classifier)")
    graded = {c.category for c in store.judgment_counts() if c.arm == production_arm and c.ok}
    if not graded:
        raise ValueError(f"{store.run_dir}: no graded Y production responses (arm {production_arm}); run the "
                         "sample and grade stages before selecting top-k challenge prefixes")
    if categories:
        missing = sorted(set(categories) - graded)
        if missing:
            raise ValueError(f"no graded {production_arm} judgments for categories {', '.join(missing)} "
                             f"(graded: {', '.join(sorted(graded))})")
    rows = store.rank_prefixes_by_judgments(production_arm, k, order=_STORE_ORDER[score],
                                            categories=categories)
    return [RiskRank(pid, flags, top) for pid, flags, top in rows]


def challenge_copy(prefix: Prefix, stratum: str = TOP_K_STRATUM) -> Prefix:
    """A production prefix as a challenge-pool prefix: same prompt, context and provenance
    (conversation id, turn), a new id, no continuation (Y's response stays with the original,
    so the copy can never be mistaken for a ``y_prod`` item)."""
    return challenge_prefix(prefix.conversation_id, prefix.turn_index, prefix.messages, prefix.context,
                            stratum)


def select_top_k(store: RunStore, k: int, *, score: RiskScore = "flags",
                 categories: Sequence[str] | None = None) -> list[Prefix]:
    """Adversarially selected production prefixes (see :func:`rank_production_prefixes`) as
    challenge-pool copies, highest risk first. Fewer than k come back when fewer prefixes
    have a positive risk score."""
    return _copies(store, rank_production_prefixes(store, k, score=score, categories=categories))


def _copies(store: RunStore, ranks: Iterable[RiskRank]) -> list[Prefix]:
    copies = []
    for rank in ranks:
        prefix = store.get_prefix(rank.prefix_id)
        if prefix is None:  # the ranking joins on prefixes, so this is a store inconsistency
            raise RuntimeError(f"judged prefix {rank.prefix_id} is missing from the store")
        copies.append(challenge_copy(prefix))
    return copies


def store_challenge_set(store: RunStore, prefixes: Iterable[Prefix], *, name: str | None = None,
                        report: Mapping[str, Any] | None = None) -> int:
    """Insert challenge prefixes; returns how many were new (0 when stored before). With
    ``name``, records the stage report ``challenge/<name>``: ``report`` plus the counts."""
    batch = list(prefixes)
    wrong = [p.id for p in batch if p.pool != CHALLENGE_POOL]
    if wrong:
        raise ValueError(f"{len(wrong)} prefixes are not in the challenge pool (first: {wrong[0]}); "
                         "build them with load_challenge_set or select_top_k")
    added = store.put_prefixes(batch)
    if name is not None:
        total = store.count_prefixes(pool=CHALLENGE_POOL)
        store.put_stage_report("challenge", name, {**(report or {}), "prefixes": len(batch), "new": added,
                                                   "challenge_pool_total": total})
    return added


def add_challenge_set(store: RunStore, cset: ChallengeSet) -> int:
    """Store a loaded set: its prefixes, its quarantined rows, and its stage report."""
    store.put_quarantined(cset.quarantined)
    return store_challenge_set(store, cset.prefixes, name=cset.name, report=cset.report())


def add_top_k(store: RunStore, k: int, *, score: RiskScore = "flags", categories: Sequence[str] | None = None,
              production_arm: str = "y_prod") -> tuple[list[RiskRank], int]:
    """Select and store the top-k challenge prefixes (stage report ``challenge/top_k``)."""
    ranks = rank_production_prefixes(store, k, score=score, categories=categories,
                                     production_arm=production_arm)
    prefixes = _copies(store, ranks)
    added = store_challenge_set(store, prefixes, name=TOP_K_STRATUM, report={
        "kind": "top_k", "k": k, "score": score, "categories": list(categories) if categories else "all",
        "selected": len(prefixes), "min_flags": min((r.flags for r in ranks), default=None),
        "min_score": min((r.max_score for r in ranks if r.max_score is not None), default=None)})
    return ranks, added


def challenge_from_config(store: RunStore, cfg: ForecastConfig, *,
                          production_arm: str = "y_prod") -> dict[str, int]:
    """What ``[forecast]`` asks for (``challenge_set`` and/or ``challenge_top_k``), stored;
    returns new prefixes per source. Top-k needs graded ``y_prod`` judgments, so a pipeline
    runs it after grading Y production and before simulating the ``challenge`` arm."""
    added: dict[str, int] = {}
    if cfg.challenge_set is not None:
        cset = load_challenge_set(cfg.challenge_set, limit=cfg.challenge_limit, seed=cfg.challenge_seed,
                                  product_context=cfg.challenge_product_context)
        added[cset.name] = add_challenge_set(store, cset)
    if cfg.challenge_top_k is not None:
        _, added[TOP_K_STRATUM] = add_top_k(store, cfg.challenge_top_k, score=cfg.challenge_score,
                                            categories=cfg.challenge_categories,
                                            production_arm=production_arm)
    return added
