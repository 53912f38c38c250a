"""ShareGPT: ``{id, conversations | items: [{from, value}]}`` rows, incl. the tool-calling variant.

Speaker names vary across ShareGPT dumps and their derivatives, so they are mapped through
:data:`ROLES`; an unknown speaker is a row error (guessing would put words in the wrong mouth).
The LLaMA-Factory tool variant is supported: a ``function_call`` turn holds JSON
``{name, arguments}`` (or a list of them) and becomes an assistant tool call, the following
``observation`` / ``tool`` / ``function`` turn becomes the tool message answering it; a
top-level ``tools`` (JSON text or list) gives the tool definitions and ``system`` a system prompt.
Multimodal dumps (LLaVA style: a row-level ``image``/``images`` and ``<image>`` placeholders in
the text) keep the text; the messages holding a placeholder are listed under
``meta.extra["non_text_messages"]`` so the sampler can leave those turns out.
"""

from __future__ import annotations

from typing import Any

import orjson

from deploysim.hashing import content_hash
from deploysim.sources.formats import fields
from deploysim.sources.formats.base import NON_TEXT_KEY, RowError

NAME = "sharegpt"
#: auto-detection order (lower first); the registry sorts formats by it
DETECT_PRIORITY = 40

ROLES: dict[str, str] = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "model": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "tool",
    "observation": "tool",
    "function_call": "function_call",
}

_IMAGE_PLACEHOLDER = "<image>"


def detect(row: dict[str, Any]) -> bool:
    turns = _turns_value(row)[1]
    if not isinstance(turns, list | tuple):
        return False
    return not turns or (isinstance(turns[0], dict) and "from" in turns[0])


def convert(row: dict[str, Any], *, source: str, index: int) -> list[dict[str, Any]]:
    key, value = _turns_value(row)
    messages = _messages(fields.as_list(value, key), key, fields.optional_str(row.get("system"), "system"))
    tools = _tools(row.get("tools"))
    extra: dict[str, Any] = {"dataset": "sharegpt"}
    if row.get("image") or row.get("images"):
        extra[NON_TEXT_KEY] = [i for i, m in enumerate(messages) if _IMAGE_PLACEHOLDER in m["content"]]
    return [
        fields.conversation(
            fields.dataset_id(row.get("id"), "id") or content_hash(["sharegpt", messages, tools]),
            messages,
            source=source,
            tools=tools,
            deployed_model=fields.optional_str(row.get("model"), "model"),
            extra=extra,
        )
    ]


def _messages(turns: list[Any], key: str, system: str | None) -> list[dict[str, Any]]:
    """Turns -> messages; a ``function_call`` turn's calls are answered, oldest first, by the
    tool turns that follow it."""
    messages = [fields.message("system", system)] if system is not None else []
    pending_calls: list[dict[str, Any]] = []
    call_count = 0
    for i, entry in enumerate(turns):
        path = f"{key}[{i}]"
        turn = fields.as_dict(entry, path)
        if "value" not in turn:
            raise RowError(f"{path}.value: missing")
        role = fields.map_role(turn.get("from"), ROLES, f"{path}.from")
        content = fields.text(turn["value"], f"{path}.value")
        if role == "function_call":
            calls = []
            for call in _parse_calls(content, f"{path}.value"):
                call_count += 1
                calls.append(fields.openai_tool_call(call, f"{path}.value", default_id=f"call_{call_count}"))
            pending_calls.extend(calls)
            messages.append(fields.message("assistant", "", tool_calls=calls))
        elif role == "tool":
            answered = pending_calls.pop(0) if pending_calls else {"id": None, "name": None}
            call_id, name = answered["id"], answered["name"]
            messages.append(fields.message("tool", content, tool_call_id=call_id, name=name))
        else:
            messages.append(fields.message(role, content))
    if not any(m["role"] != "system" for m in messages):
        raise RowError(f"{key}: no turns")
    return messages


def _turns_value(row: dict[str, Any]) -> tuple[str, Any]:
    """Dumps name the turn list ``conversations`` (most) or ``items`` (the original crawl)."""
    if "conversations" in row:
        return "conversations", row["conversations"]
    return "items", row.get("items")


def _parse_calls(content: str, path: str) -> list[Any]:
    try:
        parsed = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise RowError(f"{path}: function_call is not valid JSON ({exc})") from None
    calls = parsed if isinstance(parsed, list) else [parsed]
    if not calls:
        raise RowError(f"{path}: function_call holds no call")
    return calls


def _tools(value: Any) -> list[dict[str, Any]]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise RowError(f"tools: not valid JSON ({exc})") from None
    return fields.openai_tool_specs(value, "tools")
