"""Which eligible turns of a conversation may be sampled (filters), and its stratum.

Works on the normalized dicts of :mod:`deploysim.sources.validate` (which already found the
eligible turns), because it runs on every conversation of the corpus.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from deploysim.sample.config import SampleConfig
from deploysim.sources.formats.base import NON_TEXT_KEY
from deploysim.sources.reader import ScannedRow

TurnFilter = Callable[[dict[str, Any], list[int]], list[int]]
#: a conversation offered for sampling: (line, position in its row, row payload, usable turns, stratum)
Candidate = tuple[int, int, bytes, list[int], "str | None"]
#: stratum of a conversation whose stratification field is missing
MISSING_STRATUM = "(missing)"
_META_FIELDS = frozenset(("source", "deployed_model", "product_context", "timestamp", "language",
                          "deidentified"))


class TurnLimit:
    """Drops turns whose prefix would exceed ``max_messages`` messages, counting them. A turn is
    a message index, so its prefix holds ``turn + 1`` messages; eligible turns come in order,
    so the common case (the last turn is within the limit) costs one comparison."""

    __slots__ = ("dropped", "max_messages")

    def __init__(self, max_messages: int) -> None:
        self.max_messages = max_messages
        self.dropped = 0

    def cut(self, usable: list[int]) -> list[int]:
        if not usable or usable[-1] < self.max_messages:
            return usable
        kept = [t for t in usable if t < self.max_messages]
        self.dropped += len(usable) - len(kept)
        return kept


def make_turn_filter(cfg: SampleConfig) -> TurnFilter | None:
    """A function narrowing a conversation's eligible turns per ``cfg``; None if no filter is
    active. Language and context match case-insensitively; a conversation without the field
    does not match. Turns = user messages in the conversation."""
    languages = {x.casefold() for x in cfg.languages} if cfg.languages else None
    contexts = {x.casefold() for x in cfg.contexts} if cfg.contexts else None
    min_turns, max_turns, text_only = cfg.min_turns, cfg.max_turns, cfg.text_only
    if not (languages or contexts or min_turns or max_turns or text_only):
        return None

    def turn_filter(conv: dict[str, Any], turns: list[int]) -> list[int]:
        meta = conv.get("meta") or {}
        if languages is not None and str(meta.get("language") or "").casefold() not in languages:
            return []
        if contexts is not None and str(meta.get("product_context") or "").casefold() not in contexts:
            return []
        if min_turns or max_turns:
            users = sum(1 for m in conv["messages"] if m["role"] == "user")
            if (min_turns and users < min_turns) or (max_turns and users > max_turns):
                return []
        if text_only:
            non_text = (meta.get("extra") or {}).get(NON_TEXT_KEY)
            if non_text:
                first = min(non_text)
                return [t for t in turns if t < first]
        return turns

    return turn_filter


def stratum_of(conv: dict[str, Any], field: str) -> str:
    """Value of ``field`` in the conversation's metadata (or ``meta.extra``) as a string."""
    meta = conv.get("meta") or {}
    value = meta.get(field) if field in _META_FIELDS else (meta.get("extra") or {}).get(field)
    return MISSING_STRATUM if value is None or value == "" else str(value)


def candidates(rows: Iterable[ScannedRow], turn_filter: TurnFilter | None,
               stratify_by: str | None, limit: TurnLimit | None = None) -> Iterator[Candidate]:
    """Every conversation of a reader's scanned rows that has usable turns. The hot loop of
    sampling: rows that a format's ``scan`` vouched for (``convs`` None) hold plain text only
    and skip the filters (filters and strata that need metadata make the reader convert); the
    prefix-length ``limit`` applies to both."""
    for line, payload, convs, turns in rows:
        ordinal = -1
        for usable in turns:
            ordinal += 1
            if limit is not None:
                usable = limit.cut(usable)
            if not usable:
                continue
            if convs is None:
                yield line, ordinal, payload, usable, None
                continue
            conv = convs[ordinal]
            if turn_filter is not None:
                usable = turn_filter(conv, usable)
                if not usable:
                    continue
            stratum = stratum_of(conv, stratify_by) if stratify_by is not None else None
            yield line, ordinal, payload, usable, stratum
