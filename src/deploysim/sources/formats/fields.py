"""Typed field access shared by the dataset converters (WildChat, LMSYS, ShareGPT, OASST, HH, tau).

Every helper takes the field's *path* inside the row (``conversation[3].role``) and raises
:class:`RowError` with that path, so a quarantined row says exactly which field was unusable.
The builders return plain dicts in the JSON shape of ``Conversation.model_dump(mode="json")``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

import orjson

from deploysim.sources.formats.base import RowError


def type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def as_list(value: Any, path: str) -> list[Any]:
    """``value`` as a list (tuples from Parquet decoding count as lists)."""
    if isinstance(value, list | tuple):
        return list(value)
    raise RowError(f"{path}: expected a list, got {type_name(value)}")


def as_dict(value: Any, path: str) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    raise RowError(f"{path}: expected an object, got {type_name(value)}")


def text(value: Any, path: str) -> str:
    """Message text: a string, or null read as empty (the core decides whether empty is usable)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    raise RowError(f"{path}: expected a string, got {type_name(value)}")


def optional_str(value: Any, path: str) -> str | None:
    """A metadata string; empty and null both mean "not stated"."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    raise RowError(f"{path}: expected a string, got {type_name(value)}")


def dataset_id(value: Any, path: str) -> str | None:
    """A dataset's own id (string or integer) as text; empty and null mean "no id"."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise RowError(f"{path}: expected an id (string or integer), got {type_name(value)}")


def timestamp(value: Any, path: str) -> str | None:
    """ISO 8601 text: strings are kept as found, datetimes (Parquet) and epoch seconds converted."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC).isoformat()
    raise RowError(f"{path}: expected a timestamp, got {type_name(value)}")


def map_role(value: Any, roles: Mapping[str, str], path: str) -> str:
    """Dataset role name -> deploysim role; unknown names are a row error, never guessed."""
    if isinstance(value, str) and value.strip().lower() in roles:
        return roles[value.strip().lower()]
    raise RowError(f"{path}: unknown role {value!r} (expected one of {', '.join(sorted(roles))})")


def json_text(value: Any) -> str:
    """Compact JSON text for tool-call arguments that a log stored as an object."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def message(
    role: str,
    content: str,
    *,
    tool_calls: Iterable[dict[str, Any]] = (),
    tool_call_id: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    return {
        "role": role,
        "content": content,
        "tool_calls": list(tool_calls),
        "tool_call_id": tool_call_id,
        "name": name,
    }


def conversation(
    conversation_id: str,
    messages: list[dict[str, Any]],
    *,
    source: str,
    tools: Iterable[dict[str, Any]] = (),
    deployed_model: str | None = None,
    product_context: str | None = None,
    timestamp: str | None = None,
    language: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": conversation_id,
        "messages": messages,
        "tools": list(tools),
        "meta": {
            "source": source,
            "deployed_model": deployed_model,
            "product_context": product_context,
            "timestamp": timestamp,
            "language": language,
            "deidentified": "raw",
            "extra": dict(extra or {}),
        },
    }


def openai_tool_call(value: Any, path: str, *, default_id: str) -> dict[str, Any]:
    """One tool call in OpenAI wire shape (``{id, type, function: {name, arguments}}``) or flat
    (``{name, arguments}``). Arguments stored as an object are serialised to JSON text."""
    call = as_dict(value, path)
    function = as_dict(call["function"], f"{path}.function") if "function" in call else call
    fpath = f"{path}.function" if "function" in call else path
    name = optional_str(function.get("name"), f"{fpath}.name")
    if name is None:
        raise RowError(f"{fpath}.name: missing tool name")
    arguments = function.get("arguments", "{}")
    if arguments is None:
        arguments = "{}"
    elif not isinstance(arguments, str):
        if not isinstance(arguments, Mapping | list):
            raise RowError(f"{fpath}.arguments: expected JSON text or an object, got {type_name(arguments)}")
        arguments = json_text(arguments)
    call_id = optional_str(call.get("id"), f"{path}.id") or default_id
    return {"id": call_id, "name": name, "arguments": arguments}


def openai_tool_spec(value: Any, path: str) -> dict[str, Any]:
    """A tool definition, ``{type: function, function: {...}}`` or the flat function object."""
    spec = as_dict(value, path)
    function = as_dict(spec["function"], f"{path}.function") if "function" in spec else spec
    fpath = f"{path}.function" if "function" in spec else path
    name = optional_str(function.get("name"), f"{fpath}.name")
    if name is None:
        raise RowError(f"{fpath}.name: missing tool name")
    parameters = function.get("parameters") or {}
    return {
        "name": name,
        "description": optional_str(function.get("description"), f"{fpath}.description") or "",
        "parameters": as_dict(parameters, f"{fpath}.parameters"),
    }


def openai_tool_specs(value: Any, path: str) -> list[dict[str, Any]]:
    return [openai_tool_spec(spec, f"{path}[{i}]") for i, spec in enumerate(as_list(value, path))]


def moderation_summary(value: Any, path: str) -> dict[str, Any] | None:
    """Summary of per-message OpenAI moderation results (WildChat, LMSYS-Chat-1M).

    Keeps which messages were flagged and the union of flagged categories; the full score
    tables are per message and large, so they are not copied into the conversation.
    """
    if value is None:
        return None
    flagged_messages: list[int] = []
    categories: set[str] = set()
    for i, entry in enumerate(as_list(value, path)):
        result = as_dict(entry, f"{path}[{i}]")
        if result.get("flagged"):
            flagged_messages.append(i)
        for category, hit in as_dict(result.get("categories") or {}, f"{path}[{i}].categories").items():
            if hit:
                categories.add(str(category))
    return {
        "flagged": bool(flagged_messages),
        "flagged_messages": flagged_messages,
        "categories": sorted(categories),
    }


#: Role names of logs whose turns are already ``{role, content}`` (WildChat, LMSYS-Chat-1M).
CHAT_ROLES: dict[str, str] = {"system": "system", "user": "user", "assistant": "assistant"}


def role_content_messages(value: Any, path: str) -> list[dict[str, Any]]:
    """``[{role, content, ...}]`` turns -> messages; extra per-turn keys are ignored here."""
    messages = []
    for i, entry in enumerate(as_list(value, path)):
        turn = as_dict(entry, f"{path}[{i}]")
        role = map_role(turn.get("role"), CHAT_ROLES, f"{path}[{i}].role")
        messages.append(message(role, text(turn.get("content"), f"{path}[{i}].content")))
    if not messages:
        raise RowError(f"{path}: no turns")
    return messages
