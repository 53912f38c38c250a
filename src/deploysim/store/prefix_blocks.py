"""Prefixes share their history instead of storing it again per turn.

Many prefixes of one long conversation repeat the same earlier messages. A prefix is stored as
its record with only the *tail* of its messages inline, plus the ids of the full blocks of
:data:`BLOCK` messages before it; each block (its messages' JSON) is stored once in the
``message_blocks`` table under the hash of its content. Blocks are cut at multiples of
:data:`BLOCK` from the start of the conversation, so every prefix of a conversation references
the same blocks for the history it shares with the others, and a run of k prefixes from one
conversation of m messages stores about m + k·BLOCK messages instead of about k·m/2. Prefixes
shorter than one block (nearly all chat traffic) are stored whole, exactly as before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson

from deploysim.records import Prefix

#: messages per shared block
BLOCK = 64


def block_id(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()[:32]


def encode(prefix: Prefix) -> tuple[str, str | None, list[tuple[str, bytes]]]:
    """(record JSON with the inline tail, JSON list of block ids or None, block rows)."""
    if len(prefix.messages) < BLOCK:
        return prefix.model_dump_json(), None, []
    data = prefix.model_dump(mode="json")
    messages = data["messages"]
    full = (len(messages) // BLOCK) * BLOCK
    rows = []
    for start in range(0, full, BLOCK):
        payload = orjson.dumps(messages[start:start + BLOCK])
        rows.append((block_id(payload), payload))
    data["messages"] = messages[full:]
    return orjson.dumps(data).decode(), orjson.dumps([r[0] for r in rows]).decode(), rows


def block_ids(refs: Iterable[str | None]) -> list[str]:
    """Every block id referenced by stored ``blocks`` columns (deduplicated, in order)."""
    out: dict[str, None] = {}
    for ref in refs:
        if ref:
            out.update(dict.fromkeys(orjson.loads(ref)))
    return list(out)


def decode(record: str, blocks: str | None, fetched: Mapping[str, bytes]) -> Prefix:
    """The stored prefix with its history put back."""
    if not blocks:
        return Prefix.model_validate_json(record)
    data = orjson.loads(record)
    history: list[Any] = []
    for ref in orjson.loads(blocks):
        payload = fetched.get(ref)
        if payload is None:
            raise RuntimeError(f"prefix {data.get('id')}: history block {ref} is missing from the run store")
        history.extend(orjson.loads(payload))
    data["messages"] = history + data["messages"]
    return Prefix.model_validate(data)


def decode_rows(rows: Sequence[tuple[str, str | None]], fetch: Callable[[list[str]], Mapping[str, bytes]],
                ) -> list[Prefix]:
    """Prefixes of stored (record, blocks) rows, fetching every block the page needs at once."""
    needed = block_ids(b for _, b in rows)
    fetched = fetch(needed) if needed else {}
    return [decode(record, blocks, fetched) for record, blocks in rows]
