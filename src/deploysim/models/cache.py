"""Response cache: the same request asked again is answered from disk, not billed again.

Key = hash of (model spec hash, scope, messages, tools, sampling params, sample index). The
sample index is part of the key so that several samples of one prefix stay independent draws,
and the scope (the prefix id, unless a run asks to share answers across prefixes) so that two
prefixes with identical text are two independent draws too; asking for sample 3 of a prefix
twice (a resumed run, a second run over the same prefixes, a judge re-grading a completion)
reuses the answer. The cache lives in a run store's
``response_cache`` table: by default the run's own, or a shared directory given by the user.
Writes are buffered and flushed in batches so a cache never costs a transaction per request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from deploysim.models.base import Generation, ModelRequest
from deploysim.records import Message
from deploysim.store.db import RunStore


def _message_key(m: Message) -> list[Any]:
    return [m.role, m.content, [[c.id, c.name, c.arguments] for c in m.tool_calls], m.tool_call_id, m.name]


def request_key(spec_hash: str, request: ModelRequest, sample_index: int, scope: str = "") -> str:
    """Identity of one request (hand-rolled rather than pydantic dumps: it runs per call)."""
    payload = [
        spec_hash,
        scope,
        [_message_key(m) for m in request.messages],
        [[t.name, t.description, t.parameters] for t in request.tools],
        request.params.model_dump(mode="json", exclude_defaults=True),
        sample_index,
    ]
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()[:40]


class ResponseCache:
    """Read-through, write-behind cache over :class:`RunStore` (buffer flushed at
    ``flush_every`` entries and on :meth:`flush`)."""

    def __init__(self, store: RunStore, *, flush_every: int = 512) -> None:
        self.store = store
        self.flush_every = flush_every
        self._pending: dict[str, tuple[str, str]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Generation | None:
        pending = self._pending.get(key)
        text = pending[1] if pending is not None else self.store.get_cached_response(key)
        if text is None:
            self.misses += 1
            return None
        self.hits += 1
        return Generation.model_validate_json(text)

    def get_many(self, keys: Sequence[str]) -> dict[str, Generation]:
        """Hits among ``keys`` with one store query (the batched path of simulation)."""
        found = {k: self._pending[k][1] for k in keys if k in self._pending}
        rest = [k for k in keys if k not in found]
        if rest:
            found.update(self.store.get_cached_responses(rest))
        self.hits += len(found)
        self.misses += len(keys) - len(found)
        return {k: Generation.model_validate_json(v) for k, v in found.items()}

    def put(self, key: str, spec_hash: str, generation: Generation) -> None:
        self._pending[key] = (spec_hash, generation.model_dump_json())
        if len(self._pending) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            rows = [(k, h, r) for k, (h, r) in self._pending.items()]
            self._pending.clear()
            self.store.put_cached_responses(rows)
