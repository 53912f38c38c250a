"""Where the text is in a record, in conversation order.

Each ``map_*`` function rebuilds a record with ``edit`` applied to every free-text field, in the
order a reader meets them: tool definitions, then each message (content, then its tool calls'
arguments, then the user's display name). Running the same walk once to collect texts and once
to replace them keeps detection batched while pseudonyms are numbered in conversation order.

Tool-call arguments are JSON: only string values are edited (keys and numbers are structure),
and arguments that did not change keep their exact original text. In tool schemas, keys that
carry structure (``type``, ``format``, ``pattern``, ``required``, ...) are left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from deploysim.records import Completion, Continuation, Conversation, Message, Prefix, ToolCall, ToolSpec

Edit = Callable[[str], str]
#: the user's display name (OpenAI ``name`` on a user message) is replaced as a whole
NameEdit = Callable[[str], str]
_SCHEMA_KEYS = frozenset(
    {"type", "format", "pattern", "required", "$ref", "$schema", "$id", "additionalProperties"}
)


def map_json_strings(value: Any, edit: Edit, *, skip_keys: frozenset[str] = frozenset()) -> Any:
    if isinstance(value, str):
        return edit(value)
    if isinstance(value, list):
        return [map_json_strings(v, edit, skip_keys=skip_keys) for v in value]
    if isinstance(value, dict):
        return {
            k: v if k in skip_keys else map_json_strings(v, edit, skip_keys=skip_keys)
            for k, v in value.items()
        }
    return value


def map_arguments(arguments: str, edit: Edit) -> str:
    """JSON arguments: edit string values; text that is not JSON is edited as a whole."""
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return edit(arguments)
    if isinstance(parsed, str):
        return edit(arguments)
    edited = map_json_strings(parsed, edit)
    return arguments if edited == parsed else orjson.dumps(edited).decode()


def map_tool(tool: ToolSpec, edit: Edit) -> ToolSpec:
    return tool.model_copy(
        update={
            "description": edit(tool.description),
            "parameters": map_json_strings(tool.parameters, edit, skip_keys=_SCHEMA_KEYS),
        }
    )


def map_message(message: Message, edit: Edit, edit_name: NameEdit) -> Message:
    calls = tuple(
        ToolCall(id=c.id, name=c.name, arguments=map_arguments(c.arguments, edit)) for c in message.tool_calls
    )
    name = edit_name(message.name) if message.name and message.role == "user" else message.name
    return message.model_copy(update={"content": edit(message.content), "tool_calls": calls, "name": name})


def map_conversation(conv: Conversation, edit: Edit, edit_name: NameEdit) -> Conversation:
    tools = tuple(map_tool(t, edit) for t in conv.tools)
    messages = tuple(map_message(m, edit, edit_name) for m in conv.messages)
    meta = conv.meta.model_copy(
        update={"extra": map_json_strings(conv.meta.extra, edit), "deidentified": "deidentified"}
    )
    return conv.model_copy(update={"tools": tools, "messages": messages, "meta": meta})


def map_prefix(prefix: Prefix, edit: Edit, edit_name: NameEdit) -> Prefix:
    """System prompt, tools, messages, then the production continuation (which, in a longer
    prefix of the same conversation, is part of the messages: same order, same numbers)."""
    ctx = prefix.context
    system_prompt = edit(ctx.system_prompt) if ctx.system_prompt is not None else None
    tools = tuple(map_tool(t, edit) for t in ctx.tools)
    messages = tuple(map_message(m, edit, edit_name) for m in prefix.messages)
    continuation = None
    if prefix.continuation is not None:
        continuation = Continuation(
            response=map_message(prefix.continuation.response, edit, edit_name),
            steps=tuple(map_message(m, edit, edit_name) for m in prefix.continuation.steps),
        )
    context = ctx.model_copy(
        update={"system_prompt": system_prompt, "tools": tools, "deidentified": "deidentified"}
    )
    return prefix.model_copy(update={"messages": messages, "context": context, "continuation": continuation})


def map_completion(completion: Completion, edit: Edit, edit_name: NameEdit) -> Completion:
    message = map_message(completion.message, edit, edit_name) if completion.message is not None else None
    transcript = tuple(map_message(m, edit, edit_name) for m in completion.transcript)
    error = edit(completion.error) if completion.error else completion.error
    return completion.model_copy(update={"message": message, "transcript": transcript, "error": error})
