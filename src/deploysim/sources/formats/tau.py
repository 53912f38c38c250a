"""tau-bench agent trajectories (customer-service agents with tools and a simulated user).

A row is one trajectory ``{task_id, trial, reward, info, traj}`` where ``traj`` is a list of
OpenAI chat messages: the system prompt (the domain policy), user turns, assistant turns
with ``tool_calls`` and ``tool`` messages with ``tool_call_id``. Result files are JSON arrays
of such rows; the reader core hands over one trajectory at a time.

The published result files do not include the tool schemas (they live in the benchmark's
code), so unless the row has a ``tools`` list the tools are *inferred* from the recorded
calls: one tool per called name, with the argument names and JSON types seen in its calls,
flagged ``meta.extra.tools_inferred``. A tool message whose ``tool_call_id`` matches no
earlier call is a row error: the trajectory would no longer say which call produced it.
"""

from __future__ import annotations

from typing import Any

import orjson

from deploysim.hashing import content_hash
from deploysim.sources.formats import fields
from deploysim.sources.formats.base import RowError

NAME = "tau"
#: auto-detection order (lower first); the registry sorts formats by it
DETECT_PRIORITY = 20
PRODUCT_CONTEXT = "customer_support"

ROLES: dict[str, str] = {role: role for role in ("system", "developer", "user", "assistant", "tool")}

_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)


def detect(row: dict[str, Any]) -> bool:
    return isinstance(row.get("traj"), list | tuple) and "task_id" in row


def convert(row: dict[str, Any], *, source: str, index: int) -> list[dict[str, Any]]:
    task_id = fields.dataset_id(row.get("task_id"), "task_id")
    if task_id is None:
        raise RowError("task_id: missing")
    messages = _messages(fields.as_list(row.get("traj"), "traj"))
    tools_inferred = row.get("tools") is None
    tools = inferred_tools(messages) if tools_inferred else fields.openai_tool_specs(row["tools"], "tools")
    info = row["info"] if isinstance(row.get("info"), dict) else {}
    extra: dict[str, Any] = {"dataset": "tau-bench", "task_id": row["task_id"]}
    extra["tools_inferred"] = tools_inferred
    for key in ("trial", "reward"):
        if row.get(key) is not None:
            extra[key] = row[key]
    if isinstance(info.get("source"), str):
        extra["ended_by"] = info["source"]
    trial = row.get("trial")
    conversation_id = f"tau-{task_id}-{'' if trial is None else trial}-{content_hash(messages, length=12)}"
    return [
        fields.conversation(
            conversation_id,
            messages,
            source=source,
            tools=tools,
            product_context=PRODUCT_CONTEXT,
            extra=extra,
        )
    ]


def _messages(traj: list[Any]) -> list[dict[str, Any]]:
    """OpenAI chat messages -> normalized messages, checking each tool output answers a call."""
    messages = []
    call_names: dict[str, str] = {}
    for i, entry in enumerate(traj):
        path = f"traj[{i}]"
        raw = fields.as_dict(entry, path)
        role = fields.map_role(raw.get("role"), ROLES, f"{path}.role")
        content = fields.text(raw.get("content"), f"{path}.content")
        if role == "assistant":
            calls = [
                fields.openai_tool_call(call, f"{path}.tool_calls[{j}]", default_id=f"call_{i}_{j}")
                for j, call in enumerate(fields.as_list(raw.get("tool_calls") or [], f"{path}.tool_calls"))
            ]
            call_names.update({call["id"]: call["name"] for call in calls})
            messages.append(fields.message(role, content, tool_calls=calls))
        elif role == "tool":
            call_id = fields.optional_str(raw.get("tool_call_id"), f"{path}.tool_call_id")
            if call_id is None or call_id not in call_names:
                raise RowError(f"{path}.tool_call_id: {call_id!r} matches no earlier tool call")
            name = fields.optional_str(raw.get("name"), f"{path}.name") or call_names[call_id]
            messages.append(fields.message(role, content, tool_call_id=call_id, name=name))
        else:
            messages.append(fields.message(role, content))
    return messages


def inferred_tools(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool specs reconstructed from recorded calls, in order of first use.

    Each argument becomes a property typed by the JSON types of the values seen for it;
    calls whose arguments are not a JSON object still name the tool but add no properties.
    """
    seen: dict[str, dict[str, set[str]]] = {}
    for message in messages:
        for call in message["tool_calls"]:
            properties = seen.setdefault(call["name"], {})
            try:
                arguments = orjson.loads(call["arguments"])
            except orjson.JSONDecodeError:
                continue
            if isinstance(arguments, dict):
                for key, value in arguments.items():
                    properties.setdefault(key, set()).add(_json_type(value))
    return [
        {
            "name": name,
            "description": "",
            "parameters": {
                "type": "object",
                "properties": {key: {"type": _type_field(types)} for key, types in properties.items()},
            },
        }
        for name, properties in seen.items()
    ]


def _json_type(value: Any) -> str:
    for python_type, json_type in _JSON_TYPES:
        if isinstance(value, python_type):
            return json_type
    return "null"


def _type_field(types: set[str]) -> str | list[str]:
    if {"integer", "number"} <= types:
        types = types - {"integer"}
    return next(iter(types)) if len(types) == 1 else sorted(types)
