"""Content hashes: canonical JSON (sorted keys, no whitespace) -> sha256 hex.

Ids of prefixes, completions and judgments, a grader's identity and a model spec's identity
are all built here, so the same content always gets the same id across machines and runs.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON bytes for ``obj`` (pydantic models are dumped in JSON mode)."""
    if hasattr(obj, "model_dump"):
        obj = obj.model_dump(mode="json")
    return orjson.dumps(obj, option=_OPTS)


def content_hash(obj: Any, length: int = 32) -> str:
    """sha256 of the canonical JSON, hex, truncated to ``length`` characters (128 bits)."""
    return hashlib.sha256(canonical_json(obj)).hexdigest()[:length]


def bytes_hash(data: bytes, length: int = 64) -> str:
    return hashlib.sha256(data).hexdigest()[:length]
