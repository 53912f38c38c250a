"""A sampled turn -> :class:`Prefix` (+ the deployed model's real response as a completion).

DESIGN.md step 3: the prefix is every message up to and including the sampled user message;
later turns are not part of the prompt, but what really followed (the deployed model's
response, its tool calls, the real tool outputs and further assistant messages up to the
next user message) is kept as the continuation. That response is Y's production response,
stored as a completion of the incumbent's production arm (``y_prod`` by default) so it is
graded like any other arm, with the request it answered (the log's system prompt and tools)
recorded like a simulated completion's.
"""

from __future__ import annotations

from typing import Any

from deploysim.hashing import content_hash
from deploysim.records import Completion, Conversation, Prefix, RequestSettings, SentRequest
from deploysim.request_settings import logged_settings

#: model name of ``y_prod`` completions when the log does not name the deployed model
PRODUCTION_MODEL = "production"


def make_prefix(conv: Conversation, turn: int, stratum: str | None = None) -> Prefix:
    """The prefix ending at user message ``turn`` of ``conv`` (an eligible turn)."""
    return prefix_from_dict(conv.model_dump(mode="json"), turn, stratum)


def prefix_from_dict(conv: dict[str, Any], turn: int, stratum: str | None = None) -> Prefix:
    """:func:`make_prefix` on a validated normalized conversation dict (the sampler's path:
    one pydantic validation of the prefix instead of building the whole conversation)."""
    return Prefix.model_validate(prefix_dict(conv, turn, stratum))


def prefix_dict(conv: dict[str, Any], turn: int, stratum: str | None = None,
                usable_turns: int | None = None) -> dict[str, Any]:
    """The :class:`Prefix` of user message ``turn`` as the plain dict that validates into it
    (JSON values only, so worker processes can build it and send it as JSON)."""
    msgs = conv["messages"]
    if not (0 <= turn < len(msgs) - 1 and msgs[turn]["role"] == "user"
            and msgs[turn + 1]["role"] == "assistant"):
        raise ValueError(f"conversation {conv['id']}: message {turn} is not an eligible turn "
                         "(a user message answered by an assistant message)")
    end = turn + 2
    while end < len(msgs) and msgs[end]["role"] != "user":
        end += 1
    steps = [{**m, "provenance": "real"} if m["role"] == "tool" and m.get("provenance") is None else m
             for m in msgs[turn + 2:end]]
    prompt = msgs[: turn + 1]
    tools = conv.get("tools") or []
    meta = conv.get("meta") or {}
    first = msgs[0]
    return {
        "id": prefix_id(conv["id"], turn, prompt, tools),
        "conversation_id": conv["id"],
        "turn_index": turn,
        "messages": prompt,
        "context": {
            "product_context": meta.get("product_context"),
            "system_prompt": first.get("content", "") if first["role"] in ("system", "developer") else None,
            "tools": tools,
            "language": meta.get("language"),
            "deployed_model": meta.get("deployed_model"),
            "timestamp": meta.get("timestamp"),
            "deidentified": meta.get("deidentified", "raw"),
        },
        "continuation": {"response": msgs[turn + 1], "steps": steps},
        "stratum": stratum,
        "usable_turns": usable_turns,
    }


def prefix_id(conversation_id: str, turn: int, prompt: list[dict[str, Any]],
              tools: list[dict[str, Any]]) -> str:
    """:meth:`Prefix.make_id` computed on normalized dicts: the same canonical JSON as the
    records' ``model_dump(mode="json")`` (defaults filled in), so the same content hash.
    ``tests/test_sample_prefixes.py`` checks the two agree."""
    return content_hash({
        "conversation_id": conversation_id,
        "turn_index": turn,
        # checked dicts carry no other keys than the fields, so merging in the defaults is the dump
        "messages": [{**_MESSAGE_DEFAULTS, **m} if not m.get("tool_calls") else _with_calls_dumped(m)
                     for m in prompt],
        "tools": [{**_TOOL_DEFAULTS, **t} for t in tools],
    })


#: field defaults of Message and ToolSpec, as dumped
_MESSAGE_DEFAULTS: dict[str, Any] = {"content": "", "tool_calls": (), "tool_call_id": None, "name": None,
                                     "provenance": None, "reasoning": None}
_TOOL_DEFAULTS: dict[str, Any] = {"description": "", "parameters": {}}


def _with_calls_dumped(m: dict[str, Any]) -> dict[str, Any]:
    return {**_MESSAGE_DEFAULTS, **m, "tool_calls": [{"arguments": "{}", **c} for c in m["tool_calls"]]}


def production_spec_hash(deployed_model: str | None) -> str:
    return content_hash(["production", deployed_model])


def production_records(prefix: Prefix, arm: str) -> tuple[Completion, RequestSettings] | None:
    """The logged production completion of a prefix in ``arm`` and the request it answered
    (None when the prefix has no continuation): message = the deployed model's response,
    transcript = response + following steps."""
    cont = prefix.continuation
    if cont is None:
        return None
    deployed = prefix.context.deployed_model
    model = deployed or PRODUCTION_MODEL
    gen_hash = production_spec_hash(deployed)
    settings = logged_settings(prefix, model)
    completion = Completion(
        id=Completion.make_id(prefix.id, arm, gen_hash, 0), prefix_id=prefix.id, arm=arm, model=model,
        generator_hash=gen_hash, status="ok", message=cont.response, transcript=(cont.response, *cont.steps),
        request=SentRequest(settings_id=settings.id))
    return completion, settings


def production_completion(prefix: Prefix, arm: str) -> Completion | None:
    """Just the completion of :func:`production_records`."""
    records = production_records(prefix, arm)
    return None if records is None else records[0]
