"""The OpenAI chat-completions wire format, written once.

The online provider, the Batch API client and the mock server all speak it, so the request
body, the response parsing and the error classification live here. Functions work on plain
dicts and bytes (orjson) because they run once per request on the hot path.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import orjson

from deploysim.models.base import Generation, ProviderError
from deploysim.models.spec import SamplingParams
from deploysim.records import Message, ToolCall, ToolSpec, Usage

#: HTTP statuses worth retrying: timeout, conflict, too early, rate limit, server errors
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
#: error codes that come with a 429 but will not clear by waiting
NON_RETRYABLE_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})


def message_to_wire(m: Message) -> dict[str, Any]:
    """One record message as an OpenAI message dict (provenance is ours, not the wire's)."""
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [{"id": tc.id, "type": "function",
                              "function": {"name": tc.name, "arguments": tc.arguments}}
                             for tc in m.tool_calls]
        if not m.content:
            out["content"] = None
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    if m.name is not None:
        out["name"] = m.name
    return out


def tool_to_wire(t: ToolSpec) -> dict[str, Any]:
    return {"type": "function", "function": {
        "name": t.name, "description": t.description,
        "parameters": t.parameters or {"type": "object", "properties": {}}}}


def chat_body(model: str, messages: Sequence[Message], tools: Sequence[ToolSpec],
              params: SamplingParams) -> dict[str, Any]:
    """The request body; ``params.extra`` (logprobs, response_format, n, tool_choice, ...)
    is passed through verbatim so anything the endpoint accepts can be used."""
    body: dict[str, Any] = {"model": model, "messages": [message_to_wire(m) for m in messages]}
    if tools:
        body["tools"] = [tool_to_wire(t) for t in tools]
    if params.temperature is not None:
        body["temperature"] = params.temperature
    if params.top_p is not None:
        body["top_p"] = params.top_p
    if params.max_tokens is not None:
        body["max_tokens"] = params.max_tokens
    if params.seed is not None:
        body["seed"] = params.seed
    if params.stop:
        body["stop"] = params.stop
    if params.extra:
        body.update(params.extra)
    return body


#: keys OpenAI-compatible servers put a model's reasoning under (vLLM/SGLang/DeepSeek, then
#: OpenRouter/Ollama style)
REASONING_KEYS = ("reasoning_content", "reasoning")


def _wire_message(msg: Mapping[str, Any]) -> Message:
    calls = tuple(
        ToolCall(id=str(tc.get("id") or f"call_{i}"), name=str(tc["function"]["name"]),
                 arguments=_arguments_text(tc["function"].get("arguments")))
        for i, tc in enumerate(msg.get("tool_calls") or ()))
    reasoning = next((r for key in REASONING_KEYS if isinstance(r := msg.get(key), str) and r), None)
    return Message(role="assistant", content=msg.get("content") or "", tool_calls=calls, reasoning=reasoning)


def _arguments_text(args: Any) -> str:
    if args is None:
        return "{}"
    return args if isinstance(args, str) else orjson.dumps(args).decode()


def parse_chat_response(data: Any, latency_s: float = 0.0) -> Generation:
    """A decoded response body -> :class:`Generation`; a body without a usable first choice
    is a retryable :class:`ProviderError` (endpoints do emit empty ``choices`` under load)."""
    if not isinstance(data, dict):
        raise ProviderError("response body is not a JSON object", retryable=True)
    choices = data.get("choices")
    if not choices or not isinstance(choices, list):
        raise ProviderError("response has no choices", retryable=True)
    try:
        first = choices[0]
        message = _wire_message(first["message"])
        alternatives = tuple(_wire_message(c["message"]) for c in choices[1:])
    except (KeyError, TypeError, ValueError) as err:
        raise ProviderError(f"malformed choice in response: {err!r}", retryable=True) from None
    usage = data.get("usage") or {}
    logprobs = None
    lp = first.get("logprobs")
    if isinstance(lp, dict) and isinstance(lp.get("content"), list):
        logprobs = [{"token": t.get("token"), "logprob": t.get("logprob"),
                     **({"top_logprobs": t["top_logprobs"]} if t.get("top_logprobs") else {})}
                    for t in lp["content"]]
    return Generation(
        message=message, finish_reason=first.get("finish_reason"),
        usage=Usage(input_tokens=int(usage.get("prompt_tokens") or 0),
                    output_tokens=int(usage.get("completion_tokens") or 0)),
        latency_s=latency_s, raw_id=data.get("id"), logprobs=logprobs, alternatives=alternatives,
        reported_model=_str_or_none(data.get("model")),
        fingerprint=_str_or_none(data.get("system_fingerprint")))


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def decode_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise ProviderError(f"malformed JSON in response ({len(raw)} bytes): {err}",
                            retryable=True) from None


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Server hint from ``retry-after-ms`` or ``Retry-After`` (seconds; HTTP dates ignored)."""
    for key, scale in (("retry-after-ms", 1e-3), ("Retry-After", 1.0)):
        value = headers.get(key)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            continue
    return None


def status_error(status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
    """A non-2xx answer as a classified error carrying the server's message."""
    detail = body[:300].decode("utf-8", "replace").strip()
    code = None
    try:
        parsed = orjson.loads(body)
        err = parsed.get("error") if isinstance(parsed, dict) else None
        if isinstance(err, dict):
            code = err.get("code") or err.get("type")
            detail = str(err.get("message") or detail)[:300]
        elif isinstance(err, str):
            detail = err[:300]
    except orjson.JSONDecodeError:
        pass
    retryable = status in RETRYABLE_STATUS and code not in NON_RETRYABLE_CODES
    return ProviderError(f"HTTP {status}{f' {code}' if code else ''}: {detail}", retryable=retryable,
                         status=status, retry_after=retry_after_seconds(headers),
                         rate_limited=status == 429 and retryable,
                         code=str(code) if code is not None else None)


def is_loopback_url(url: str | None) -> bool:
    """True when the URL's host is localhost, 127.0.0.0/8 or ::1."""
    if not url:
        return False
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
