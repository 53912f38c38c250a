"""OpenAI chat logs: one object per row with a ``messages`` list (Chat Completions shape).

Handles string or content-part contents (and an object content holding its text under
``text`` or ``answer``, as in Arena-Hard answer dumps), ``tool_calls`` (and the legacy ``function_call``),
``tool`` / legacy ``function`` messages, ``refusal`` texts, ``tools`` / legacy ``functions``
definitions, and metadata at the top level or under ``metadata``. Messages that are already
in normalized shape (``role`` + string ``content``) are passed through without copying,
and :func:`scan` validates a plain row and finds its eligible turns without building
anything, because this is the format of private production logs and its speed sets ingest
speed; :func:`~deploysim.sources.formats.openai_bytes.scan_bytes` does the same from the row's
bytes in compiled code for the commonest shape.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from deploysim.records import ROLES
from deploysim.sources.formats.base import NON_TEXT_KEY, RowError, conversation_id
from deploysim.sources.formats.openai_bytes import scan_bytes

__all__ = ["NAME", "convert", "detect", "scan", "scan_bytes"]

NAME = "openai"
#: auto-detection order (lower first); the registry sorts formats by it
DETECT_PRIORITY = 100

#: a message dict whose keys are a subset of these and whose content is a str is already normalized
_PLAIN_KEYS = frozenset(("role", "content", "name", "tool_call_id"))
#: row keys that are not copied into ``meta.extra``
_CONSUMED = frozenset(("messages", "tools", "functions", "id", "conversation_id", "model", "metadata",
                       "product_context", "language", "timestamp", "created", "deidentified"))
_META_KEYS = ("deployed_model", "product_context", "language", "timestamp", "deidentified")
_TEXT_PART_TYPES = frozenset(("text", "input_text", "output_text"))
_COMMON_ROW_KEYS = frozenset(("id", "conversation_id", "model", "messages", "metadata", "tools"))
#: metadata keys that map straight to ``meta`` (in ``_META_KEYS`` order)
_SIMPLE_NESTED_KEYS_ORDERED = ("product_context", "language", "timestamp")
_SIMPLE_NESTED_KEYS = frozenset(_SIMPLE_NESTED_KEYS_ORDERED)
_STRING_META_KEYS = frozenset(("deployed_model", "model", "product_context", "language", "timestamp"))
_SCAN_KEYS = frozenset(("role", "content", "tool_calls", "tool_call_id", "name"))
_DEID = frozenset(("raw", "deidentified", "synthetic"))


def detect(row: dict[str, Any]) -> bool:
    """A ``messages`` list whose first item is an object with a ``role``."""
    msgs = row.get("messages")
    return type(msgs) is list and bool(msgs) and type(msgs[0]) is dict and "role" in msgs[0]


def convert(row: dict[str, Any], *, source: str, index: int) -> list[dict[str, Any]]:
    msgs = row.get("messages")
    if type(msgs) is not list:
        raise RowError(f"messages: expected a list, got {_kind(msgs)}")
    out: list[dict[str, Any]] = []
    non_text: list[int] = []
    for i, m in enumerate(msgs):
        if type(m) is not dict:
            raise RowError(f"messages[{i}]: expected an object, got {_kind(m)}")
        if len(m) == 2 and "role" in m and type(m.get("content")) is str and m["role"] != "function":
            out.append(m)  # the usual {"role", "content"} message: checked without building a key set
            continue
        if m.keys() <= _PLAIN_KEYS and type(m.get("content")) is str and m.get("role") != "function":
            out.append(m)
            continue
        msg = _message(m, i, non_text)
        if m.get("role") == "function" and "tool_call_id" not in msg and out and out[-1].get("tool_calls"):
            msg["tool_call_id"] = out[-1]["tool_calls"][-1]["id"]  # legacy result of the call just made
        out.append(msg)
    meta = _meta(row, source)
    if non_text:
        meta["extra"][NON_TEXT_KEY] = non_text
    return [{"id": _row_id(row, source, index), "messages": out, "tools": _tools(row), "meta": meta}]


def scan(row: dict[str, Any]) -> list[list[int]] | None:
    """Eligible turns of a plain row (what validating :func:`convert`'s output would give),
    or None when the row has anything :func:`convert` would reshape or might reject.

    Plain: messages with keys among role/content/tool_calls/tool_call_id/name, string or null
    content, OpenAI-shaped tool calls with string ids, names and arguments, tool definitions
    with string names, string metadata. ``tests/test_sources_core_scan.py`` checks the
    equivalence on generated rows. The loop is written for speed: a ``{"role", "content"}``
    message costs a handful of bytecodes.
    """
    msgs = row.get("messages")
    if type(msgs) is not list:
        return None
    turns: list[int] = []
    pending = -1  # the previous message when it is a user message with text (else -1)
    for i, m in enumerate(msgs):
        if type(m) is not dict:
            return None
        content = m.get("content")
        answered: Any = content
        if len(m) != 2 or type(content) is not str:
            answered = _plain_message(m)
            if answered is None:
                return None
            content = content or ""
        role = m.get("role")
        if role == "assistant":
            if pending >= 0 and answered:
                turns.append(pending)
            pending = -1
        elif role == "user":
            pending = i if content else -1
        elif role in ROLES:
            pending = -1
        else:
            return None
    if not turns and not any(m.get("content") or m.get("tool_calls") for m in msgs):
        return None  # no message has content: the full path quarantines the row
    if not _plain_meta(row) or not _plain_tools(row):
        return None
    return [turns]


def _plain_message(m: dict[str, Any]) -> Any:
    """For a message off the short path: None if not plain, else whether it has an answer
    (its content or its tool calls)."""
    if not m.keys() <= _SCAN_KEYS:
        return None
    content = m.get("content")
    if content is not None and type(content) is not str:
        return None
    for key in ("tool_call_id", "name"):
        value = m.get(key)
        if value is not None and type(value) is not str:
            return None
    calls = m.get("tool_calls")
    if calls and not _plain_calls(calls):
        return None
    return bool(content or calls)


def _plain_calls(calls: Any) -> bool:
    if type(calls) is not list:
        return False
    for call in calls:
        fn = call.get("function") if type(call) is dict else None
        if type(fn) is not dict or type(fn.get("name")) is not str or not fn["name"]:
            return False
        if type(fn.get("arguments", "")) is not str:
            return False
        cid = call.get("id")
        if cid and type(cid) is not str:
            return False
    return True


def _plain_tools(row: dict[str, Any]) -> bool:
    specs = row.get("tools") or row.get("functions") or []
    if type(specs) is not list:
        return False
    for spec in specs:
        fn = spec.get("function", spec) if type(spec) is dict else None
        if type(fn) is not dict or type(fn.get("name")) is not str or not fn["name"]:
            return False
        description, parameters = fn.get("description"), fn.get("parameters")
        if (description and type(description) is not str) or (parameters and type(parameters) is not dict):
            return False
    return True


def _plain_meta(row: dict[str, Any]) -> bool:
    """Metadata that :func:`_meta` turns into valid strings (a Unix ``created`` is left to it)."""
    nested = row.get("metadata")
    if nested is None:
        nested = {}
    elif type(nested) is not dict:
        return False
    model = row.get("model")
    if (row.keys() <= _COMMON_ROW_KEYS and nested.keys() <= _STRING_META_KEYS
            and (model is None or type(model) is str)):
        for value in nested.values():
            if type(value) is not str:
                break
        else:
            return True  # the usual shape: every metadata value is a string, nothing to derive
    model = nested.get("deployed_model") or nested.get("model") or model
    if model is not None and type(model) is not str:
        return False
    for key in ("product_context", "language", "timestamp"):
        value = nested.get(key, row.get(key))
        if value is not None and type(value) is not str:
            return False
    deid = nested.get("deidentified", row.get("deidentified"))
    if deid is not None and (type(deid) is not str or deid not in _DEID):
        return False
    return not (nested.get("timestamp", row.get("timestamp")) is None and row.get("created") is not None)


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _message(m: dict[str, Any], i: int, non_text: list[int]) -> dict[str, Any]:
    role = m.get("role")
    if role == "function":  # legacy function result
        role = "tool"
    out: dict[str, Any] = {"role": role, "content": _content(m.get("content"), i, non_text)}
    if not out["content"] and type(m.get("refusal")) is str:
        out["content"] = m["refusal"]
    calls = [_tool_call(c, i, j) for j, c in enumerate(m.get("tool_calls") or ())]
    legacy = m.get("function_call")
    if type(legacy) is dict:
        calls.append(_tool_call({"id": f"call_{i}", "function": legacy}, i, len(calls)))
    if calls:
        out["tool_calls"] = calls
    for key in ("tool_call_id", "name"):
        if m.get(key) is not None:
            out[key] = m[key]
    return out


def _content(content: Any, i: int, non_text: list[int]) -> Any:
    """String as is; content parts joined (non-text parts are noted, not inlined)."""
    if content is None:
        return ""
    if type(content) is dict:
        text = content.get("text", content.get("answer"))
        if type(text) is str:
            return text
        raise RowError(f"messages[{i}].content: object without a 'text' or 'answer' string")
    if type(content) is not list:
        return content  # wrong types are reported by the core validator with the field path
    texts: list[str] = []
    for part in content:
        if type(part) is str:
            texts.append(part)
        elif type(part) is dict and part.get("type") in _TEXT_PART_TYPES and type(part.get("text")) is str:
            texts.append(part["text"])
        elif type(part) is dict:
            if not non_text or non_text[-1] != i:
                non_text.append(i)
        else:
            raise RowError(f"messages[{i}].content: content part is {_kind(part)}, expected an object")
    return "\n".join(texts)


def _tool_call(call: Any, i: int, j: int) -> dict[str, Any]:
    if type(call) is not dict:
        raise RowError(f"messages[{i}].tool_calls[{j}]: expected an object, got {_kind(call)}")
    fn = call.get("function", call)
    if type(fn) is not dict:
        raise RowError(f"messages[{i}].tool_calls[{j}].function: expected an object")
    args = fn.get("arguments", "{}")
    if type(args) is dict or type(args) is list:
        args = orjson.dumps(args, option=orjson.OPT_SORT_KEYS).decode()
    return {"id": call.get("id") or f"call_{i}_{j}", "name": fn.get("name"), "arguments": args}


def _tools(row: dict[str, Any]) -> list[dict[str, Any]]:
    specs = row.get("tools") or row.get("functions") or []
    if type(specs) is not list:
        raise RowError(f"tools: expected a list, got {_kind(specs)}")
    out: list[dict[str, Any]] = []
    for j, spec in enumerate(specs):
        fn = spec.get("function", spec) if type(spec) is dict else None
        if type(fn) is not dict:
            raise RowError(f"tools[{j}]: expected an object with a function definition")
        out.append({"name": fn.get("name"), "description": fn.get("description") or "",
                    "parameters": fn.get("parameters") or {}})
    return out


def _row_id(row: dict[str, Any], source: str, index: int) -> str:
    for key in ("id", "conversation_id"):
        value = row.get(key)
        if type(value) is str and value:
            return value
        if type(value) is int:
            return str(value)
    return conversation_id(source, index)


def _meta(row: dict[str, Any], source: str) -> dict[str, Any]:
    """Metadata from ``metadata`` (preferred) or the top level; other scalar top-level keys go
    to ``extra`` so they can be stratified on."""
    nested = row.get("metadata")
    if nested is None:
        nested = {}
    elif type(nested) is not dict:
        raise RowError(f"metadata: expected an object, got {_kind(nested)}")
    meta: dict[str, Any] = {"source": source}
    if row.keys() <= _COMMON_ROW_KEYS and nested.keys() <= _SIMPLE_NESTED_KEYS:
        # the usual shape: what the general path below gives, without its key-by-key search
        if row.get("model") is not None:
            meta["deployed_model"] = row["model"]
        for key in _SIMPLE_NESTED_KEYS_ORDERED:
            if nested.get(key) is not None:
                meta[key] = nested[key]
        meta["extra"] = {}
        return meta
    model = nested.get("deployed_model") or nested.get("model") or row.get("model")
    if model is not None:
        meta["deployed_model"] = model
    for key in _META_KEYS[1:]:
        value = nested.get(key, row.get(key))
        if value is not None:
            meta[key] = value
    if "timestamp" not in meta and type(row.get("created")) is int:
        try:
            meta["timestamp"] = datetime.fromtimestamp(row["created"], UTC).isoformat()
        except (OverflowError, ValueError, OSError):
            raise RowError(f"created: {row['created']} is not a Unix time") from None
    extra = {k: v for k, v in nested.items() if k not in _META_KEYS and k != "model"}
    for key, value in row.items():
        if key not in _CONSUMED and (value is None or type(value) in (str, int, float, bool)):
            extra.setdefault(key, value)
    meta["extra"] = extra
    return meta
