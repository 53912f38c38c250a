"""Anthropic Messages API provider (optional extra: ``pip install 'deploysim[anthropic]'``).

Tool use is mapped both ways: OpenAI-style assistant ``tool_calls`` become ``tool_use``
blocks and ``tool`` messages become ``tool_result`` blocks (consecutive results merged into one
user turn, as the API requires); a response's ``tool_use`` blocks come back as
:class:`ToolCall` records. A JSON-schema ``response_format`` is honoured the usual way for
this API: a single forced tool whose input schema is the schema, returned as JSON text.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson

from deploysim.models.base import Generation, ModelRequest, ProviderError
from deploysim.models.spec import SamplingParams
from deploysim.models.wire import RETRYABLE_STATUS, retry_after_seconds
from deploysim.records import Message, ToolCall, ToolSpec, Usage

DEFAULT_MAX_TOKENS = 1024
STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
                "tool_use": "tool_calls", "refusal": "content_filter"}
SCHEMA_TOOL = "structured_response"
#: body keys the SDK takes as keyword arguments; anything else goes through ``extra_body``
SDK_KEYS = frozenset({"model", "messages", "max_tokens", "system", "temperature", "top_p", "top_k",
                      "stop_sequences", "tools", "tool_choice", "metadata", "thinking"})


def to_anthropic(messages: Sequence[Message]) -> tuple[str | None, list[dict[str, Any]]]:
    """(system prompt, messages) in Messages-API form."""
    system = [m.content for m in messages if m.role in ("system", "developer") and m.content]
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role in ("system", "developer"):
            continue
        if m.role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.tool_call_id or "", "content": m.content}
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list) and \
                    all(b.get("type") == "tool_result" for b in out[-1]["content"]):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
            continue
        if m.role == "assistant" and m.tool_calls:
            blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
            blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": _json_args(c.arguments)}
                       for c in m.tool_calls]
            out.append({"role": "assistant", "content": blocks})
        else:
            out.append({"role": m.role, "content": m.content})
    return ("\n\n".join(system) or None), out


def _json_args(text: str) -> Any:
    try:
        value = orjson.loads(text or "{}")
    except orjson.JSONDecodeError:
        return {"_raw": text}
    return value if isinstance(value, dict) else {"value": value}


def request_body(model: str, messages: Sequence[Message], tools: Sequence[ToolSpec],
                 params: SamplingParams) -> dict[str, Any]:
    system, msgs = to_anthropic(messages)
    body: dict[str, Any] = {"model": model, "messages": msgs,
                            "max_tokens": params.max_tokens or DEFAULT_MAX_TOKENS}
    if system:
        body["system"] = system
    if params.temperature is not None:
        body["temperature"] = params.temperature
    if params.top_p is not None:
        body["top_p"] = params.top_p
    if params.stop:
        body["stop_sequences"] = params.stop
    wire_tools = [{"name": t.name, "description": t.description,
                   "input_schema": t.parameters or {"type": "object", "properties": {}}} for t in tools]
    extra = dict(params.extra)
    fmt = extra.pop("response_format", None)
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = fmt.get("json_schema", {}).get("schema", {"type": "object"})
        wire_tools.append({"name": SCHEMA_TOOL, "description": "Respond with this structure.",
                           "input_schema": schema})
        body["tool_choice"] = {"type": "tool", "name": SCHEMA_TOOL}
    for openai_only in ("logprobs", "top_logprobs", "n", "seed", "tool_choice"):
        extra.pop(openai_only, None)
    if wire_tools:
        body["tools"] = wire_tools
    body.update(extra)
    return body


def from_anthropic(data: dict[str, Any], latency_s: float = 0.0) -> Generation:
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[ToolCall] = []
    for block in data.get("content") or []:
        if block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") == "thinking":
            thinking.append(block.get("thinking", ""))
        elif block.get("type") == "redacted_thinking":
            thinking.append("[redacted thinking]")
        elif block.get("type") == "tool_use":
            if block.get("name") == SCHEMA_TOOL:
                texts.append(orjson.dumps(block.get("input", {})).decode())
            else:
                calls.append(ToolCall(id=block.get("id", ""), name=block.get("name", ""),
                                      arguments=orjson.dumps(block.get("input", {})).decode()))
    if not texts and not calls and not data.get("content"):
        raise ProviderError("response has no content blocks", retryable=True)
    usage = data.get("usage") or {}
    finish = STOP_REASONS.get(str(data.get("stop_reason")), data.get("stop_reason"))
    if finish == "tool_calls" and not calls:
        finish = "stop"  # the forced structured-output tool is an answer, not a tool call
    message = Message(role="assistant", content="".join(texts), tool_calls=tuple(calls),
                      reasoning="\n\n".join(thinking) or None)
    return Generation(message=message, finish_reason=finish, latency_s=latency_s, raw_id=data.get("id"),
                      reported_model=data.get("model"),
                      usage=Usage(input_tokens=int(usage.get("input_tokens") or 0),
                                  output_tokens=int(usage.get("output_tokens") or 0)))


class AnthropicProvider:
    """Calls ``messages.create`` through the official SDK with its retries switched off (the
    engine retries)."""

    def __init__(self, *, model: str, base_url: str | None = None, api_key: str | None = None) -> None:
        try:
            import anthropic
        except ImportError as err:
            raise ValueError("provider 'anthropic' needs the extra: "
                             "pip install 'deploysim[anthropic]'") from err
        self._anthropic = anthropic
        self.model = model
        self._client = anthropic.AsyncAnthropic(api_key=api_key or "unset", base_url=base_url, max_retries=0,
                                                timeout=None)

    async def generate(self, request: ModelRequest) -> Generation:
        body = request_body(self.model, request.messages, request.tools, request.params)
        start = time.monotonic()
        err_mod = self._anthropic
        try:
            kwargs = {k: v for k, v in body.items() if k in SDK_KEYS}
            extra = {k: v for k, v in body.items() if k not in SDK_KEYS}
            raw = await self._client.messages.with_raw_response.create(**kwargs, extra_body=extra or None)
            data = orjson.loads(raw.http_response.content)
        except err_mod.APIStatusError as err:
            status = err.status_code
            raise ProviderError(f"HTTP {status}: {err.message}"[:400], status=status,
                                retryable=status in RETRYABLE_STATUS,
                                retry_after=retry_after_seconds(err.response.headers),
                                rate_limited=status == 429) from None
        except (err_mod.APIConnectionError, err_mod.APITimeoutError) as err:
            raise ProviderError(f"connection failed: {err}", retryable=True) from None
        except (orjson.JSONDecodeError, err_mod.APIResponseValidationError) as err:
            raise ProviderError(f"malformed response: {err}", retryable=True) from None
        return from_anthropic(data, time.monotonic() - start)

    async def aclose(self) -> None:
        await self._client.close()
