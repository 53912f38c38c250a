"""The OpenAI chat format's byte-level fast path: :func:`scan_bytes`.

Production logs are mostly rows of one plain shape (``messages`` of ``{"role", "content"}``
with a few tool calls, string metadata, function tools). For those, decoding the JSON into
dicts and then checking every value in Python costs more than twice the JSON parse itself.
Here the row is decoded by msgspec straight into typed structs whose schema *is* the plain
shape: the parser checks every type and rejects unknown keys in compiled code, so only the
eligible-turn walk is left in Python.

The schema is a strict subset of what :func:`deploysim.sources.formats.openai.scan` accepts,
so ``scan_bytes(raw)`` is either None (the reader falls back to the dict path, which decides)
or exactly ``scan(orjson.loads(raw))``. msgspec and orjson agree on what is valid JSON
(UTF-8, surrogates, number range, trailing data); ``tests/test_sources_scan_bytes.py``
checks both properties on generated rows and on those edge cases.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class _Function(msgspec.Struct):
    name: NonEmpty
    arguments: str = ""


class _ToolCall(msgspec.Struct):
    function: _Function
    id: str | None = None


class _Message(msgspec.Struct, forbid_unknown_fields=True):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: list[_ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None


class _Metadata(msgspec.Struct, forbid_unknown_fields=True):
    product_context: str | None = None
    language: str | None = None
    timestamp: str | None = None
    deployed_model: str | None = None
    model: str | None = None
    deidentified: Literal["raw", "deidentified", "synthetic"] | None = None


class _ToolFunction(msgspec.Struct):
    name: NonEmpty
    description: str | None = None
    parameters: dict[str, Any] | None = None


class _Tool(msgspec.Struct):
    function: _ToolFunction


class _Row(msgspec.Struct, forbid_unknown_fields=True):
    messages: list[_Message]
    id: str | int | None = None
    conversation_id: str | int | None = None
    model: str | None = None
    metadata: _Metadata | None = None
    tools: list[_Tool] | None = None
    product_context: str | None = None
    language: str | None = None
    timestamp: str | None = None


_decode = msgspec.json.Decoder(_Row).decode
#: msgspec raises DecodeError (ValidationError is one) for bad JSON or a non-plain row, and
#: UnicodeDecodeError (a ValueError) for invalid UTF-8
_NOT_PLAIN = (msgspec.DecodeError, ValueError)


def scan_bytes(raw: bytes) -> list[list[int]] | None:
    """Eligible turns of a plain row given as JSON bytes, or None (decide on the dict path)."""
    try:
        messages = _decode(raw).messages
    except _NOT_PLAIN:
        return None
    turns: list[int] = []
    pending = -1  # the previous message when it is a user message with text (else -1)
    for i, m in enumerate(messages):
        role = m.role
        if role == "assistant":
            if pending >= 0 and (m.content or m.tool_calls):
                turns.append(pending)
            pending = -1
        elif role == "user":
            pending = i if m.content else -1
        else:
            pending = -1
    if not turns and not any(m.content or m.tool_calls for m in messages):
        return None  # no message has content: the dict path quarantines the row
    return [turns]
