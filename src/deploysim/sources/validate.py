"""Dict-level validation of normalized conversations (the converter contract in
:mod:`deploysim.sources.formats.base`).

Every row of a corpus passes through here, so it is written for speed: one loop over the
messages that both checks them and finds the *eligible turns* (DESIGN.md step 3: a user
message that the deployed model answered), with the common ``{"role", "content"}`` message
on a short path. It is at least as strict as the pydantic records (unknown keys, wrong types,
unknown roles are errors), so the full records, built only for the rows that are used, do
not fail on a row that was counted as accepted.
"""

from __future__ import annotations

from typing import Any

from deploysim.records import ROLES
from deploysim.sources.formats.base import RowError

_CONVERSATION_KEYS = frozenset(("id", "messages", "tools", "meta"))
_SIMPLE_MESSAGE_KEYS = frozenset(("role", "content"))
_MESSAGE_KEYS = frozenset(("role", "content", "tool_calls", "tool_call_id", "name", "provenance"))
_TOOL_CALL_KEYS = frozenset(("id", "name", "arguments"))
_TOOL_SPEC_KEYS = frozenset(("name", "description", "parameters"))
_META_KEYS = frozenset(("source", "deployed_model", "product_context", "timestamp", "language",
                        "deidentified", "extra"))
_OPTIONAL_META_STR = ("deployed_model", "product_context", "timestamp", "language")
_DEID = frozenset(("raw", "deidentified", "synthetic"))
_PROVENANCE = frozenset(("real", "replayed", "simulated"))


def kind(value: object) -> str:
    """JSON-ish type name for error messages."""
    if value is None:
        return "null"
    names = {dict: "object", list: "array", str: "string", bool: "boolean"}
    return names.get(type(value), type(value).__name__)


def check_conversation(conv: Any) -> list[int]:
    """Validate one normalized conversation dict; return the indices of its eligible turns.

    A turn ``i`` is eligible when ``messages[i]`` is a user message with text and
    ``messages[i + 1]`` is an assistant message with content or tool calls (an answer given
    through tools counts). Raises :class:`RowError` naming the field for anything unusable,
    including a conversation in which no message has content ("empty").
    """
    if type(conv) is not dict:
        raise RowError(f"converter returned {kind(conv)}, expected an object")
    if not conv.keys() <= _CONVERSATION_KEYS:
        unknown = ", ".join(sorted(conv.keys() - _CONVERSATION_KEYS))
        raise RowError(f"unknown conversation field(s): {unknown}")
    cid = conv.get("id")
    if type(cid) is not str or not cid:
        raise RowError(f"id: expected a non-empty string, got {kind(cid)}")
    msgs = conv.get("messages")
    if type(msgs) is not list:
        raise RowError(f"messages: expected an array, got {kind(msgs)}")
    if not msgs:
        raise RowError("empty conversation: no messages")
    eligible: list[int] = []
    pending = -1  # index of the last user message with text, while it is still unanswered
    has_content = False
    for i, m in enumerate(msgs):
        if type(m) is not dict:
            raise RowError(f"messages[{i}]: expected an object, got {kind(m)}")
        role = m.get("role")
        if role not in ROLES:
            raise RowError(f"messages[{i}].role: unknown role {role!r}")
        content = m.get("content", "")
        if type(content) is not str:
            raise RowError(f"messages[{i}].content: expected a string, got {kind(content)}")
        has_calls = False if m.keys() <= _SIMPLE_MESSAGE_KEYS else _check_message_fields(m, i)
        if content or has_calls:
            has_content = True
        if role == "assistant" and pending == i - 1 and pending >= 0 and (content or has_calls):
            eligible.append(pending)
        pending = i if role == "user" and content else -1
    if not has_content:
        raise RowError("empty conversation: no message has content")
    if "tools" in conv:
        _check_tools(conv["tools"])
    if "meta" in conv:
        _check_meta(conv["meta"])
        # Tree formats (OpenAssistant) emit one conversation per root-to-leaf path; a turn whose
        # answer lies in the part shared with an earlier path was already counted there, so
        # sampling stays uniform over distinct prompt->answer pairs.
        shared = (conv["meta"].get("extra") or {}).get("shared_prefix_messages")
        if type(shared) is int and shared > 0:
            eligible = [t for t in eligible if t + 1 >= shared]
    return eligible


def _check_message_fields(m: dict[str, Any], i: int) -> bool:
    """The rarer message fields; returns whether the message carries tool calls."""
    if not m.keys() <= _MESSAGE_KEYS:
        raise RowError(f"messages[{i}]: unknown field(s): {', '.join(sorted(m.keys() - _MESSAGE_KEYS))}")
    for key in ("tool_call_id", "name"):
        value = m.get(key)
        if value is not None and type(value) is not str:
            raise RowError(f"messages[{i}].{key}: expected a string, got {kind(value)}")
    prov = m.get("provenance")
    if prov is not None and prov not in _PROVENANCE:
        raise RowError(f"messages[{i}].provenance: unknown value {prov!r}")
    calls = m.get("tool_calls", ())
    if type(calls) is not list and type(calls) is not tuple:
        raise RowError(f"messages[{i}].tool_calls: expected an array, got {kind(calls)}")
    for j, call in enumerate(calls):
        where = f"messages[{i}].tool_calls[{j}]"
        if type(call) is not dict or not call.keys() <= _TOOL_CALL_KEYS:
            raise RowError(f"{where}: expected an object with keys id, name, arguments")
        for key in ("id", "name"):
            if type(call.get(key)) is not str or not call[key]:
                raise RowError(f"{where}.{key}: expected a non-empty string, got {kind(call.get(key))}")
        if type(call.get("arguments", "")) is not str:
            raise RowError(f"{where}.arguments: expected a JSON string, got {kind(call['arguments'])}")
    return bool(calls)


def _check_tools(tools: Any) -> None:
    if type(tools) is not list and type(tools) is not tuple:
        raise RowError(f"tools: expected an array, got {kind(tools)}")
    for j, spec in enumerate(tools):
        if type(spec) is not dict or not spec.keys() <= _TOOL_SPEC_KEYS:
            raise RowError(f"tools[{j}]: expected an object with keys name, description, parameters")
        if type(spec.get("name")) is not str or not spec["name"]:
            raise RowError(f"tools[{j}].name: expected a non-empty string, got {kind(spec.get('name'))}")
        if type(spec.get("description", "")) is not str:
            raise RowError(f"tools[{j}].description: expected a string, got {kind(spec['description'])}")
        if type(spec.get("parameters", {})) is not dict:
            raise RowError(f"tools[{j}].parameters: expected an object, got {kind(spec['parameters'])}")


def _check_meta(meta: Any) -> None:
    if type(meta) is not dict:
        raise RowError(f"meta: expected an object, got {kind(meta)}")
    if not meta.keys() <= _META_KEYS:
        raise RowError(f"meta: unknown field(s): {', '.join(sorted(meta.keys() - _META_KEYS))}")
    if type(meta.get("source", "")) is not str:
        raise RowError(f"meta.source: expected a string, got {kind(meta['source'])}")
    for key in _OPTIONAL_META_STR:
        value = meta.get(key)
        if value is not None and type(value) is not str:
            raise RowError(f"meta.{key}: expected a string, got {kind(value)}")
    deidentified = meta.get("deidentified", "raw")
    if type(deidentified) is not str or deidentified not in _DEID:
        raise RowError(f"meta.deidentified: unknown value {meta['deidentified']!r} "
                       "(raw, deidentified, synthetic)")
    if type(meta.get("extra", {})) is not dict:
        raise RowError(f"meta.extra: expected an object, got {kind(meta['extra'])}")
