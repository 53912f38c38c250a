"""Prefixes longer than the model's context window: a stated rule instead of failed retries.

An endpoint refuses a request whose prompt does not fit its context with a 400 (llama.cpp
``exceed_context_size_error``, OpenAI ``context_length_exceeded``, vLLM "maximum context
length", Anthropic "prompt is too long"); :func:`is_context_overflow` recognises those. The
spec's ``context_overflow`` rule then decides:

* ``too_long`` (default): the completion is a final, non-retryable error whose reason starts
  with ``too long:`` — counted in the arm's errors under its own reason, never silently dropped;
* ``truncate_oldest``: drop the oldest whole turns (a user message with the assistant and tool
  messages that answered it, so tool calls keep their results), keeping the leading
  system/developer messages and the last user turn, and send again. How many messages were
  dropped is returned on the :class:`Generation` and stored with the completion's request
  record, so a reader can tell the model saw less than the prefix.

The wrapper sits outside the send-policy gate, so every shortened request is still checked.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Literal

from deploysim.models.base import Generation, ModelRequest, ProviderError
from deploysim.records import Message

ContextRule = Literal["too_long", "truncate_oldest"]
CONTEXT_RULES: tuple[str, ...] = ("too_long", "truncate_oldest")
TOO_LONG = "too long"

_CODES = frozenset({"exceed_context_size_error", "context_length_exceeded"})
_PHRASES = re.compile(
    r"maximum context length|exceeds the available context size|context length exceeded|"
    r"prompt is too long|too many tokens|input is too long|context window", re.IGNORECASE)
_NUMBERS = (
    # llama.cpp: "request (1231 tokens) exceeds the available context size (512 tokens)"
    re.compile(r"\((\d+) tokens\) exceeds the available context size \((\d+) tokens\)"),
    # vLLM / OpenAI: "maximum context length is 4096 tokens. However, you requested 5000 tokens"
    re.compile(r"maximum context length is (\d+) tokens.*?requested (\d+) tokens", re.S),
    # Anthropic: "prompt is too long: 210000 tokens > 200000 maximum"
    re.compile(r"(\d+) tokens > (\d+) maximum"),
)
#: most send attempts for one request before it is declared too long
MAX_ATTEMPTS = 12
LEADING_ROLES = frozenset({"system", "developer"})


def is_context_overflow(err: ProviderError) -> bool:
    """True when the endpoint refused the request because the prompt does not fit."""
    return err.status in (400, 413, 422) and (err.code in _CODES or bool(_PHRASES.search(str(err))))


def overflow_ratio(err: ProviderError) -> float | None:
    """context / prompt tokens when the message states both, else None."""
    text = str(err)
    for i, pattern in enumerate(_NUMBERS):
        m = pattern.search(text)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            prompt, context = (a, b) if i != 1 else (b, a)
            if prompt > 0 and context > 0:
                return context / prompt
    return None


def _turn_starts(messages: tuple[Message, ...], first: int) -> list[int]:
    return [i for i in range(first, len(messages)) if messages[i].role == "user"]


def drop_oldest(messages: tuple[Message, ...], keep_ratio: float | None) -> tuple[Message, ...] | None:
    """``messages`` without their oldest whole turns, or None when nothing more can go.

    With ``keep_ratio`` (the share of the prompt that fits), turns are dropped until the
    remaining text is below that share of the original (with a margin); without it, one turn.
    """
    first = 0
    while first < len(messages) and messages[first].role in LEADING_ROLES:
        first += 1
    starts = _turn_starts(messages, first)
    # the last user turn must stay; a body that opens on a non-user message is one turn too
    cuts = [s for s in starts if s > first]
    if not cuts:
        return None
    lead = messages[:first]
    if keep_ratio is None:
        return lead + messages[cuts[0]:]
    size = [len(m.content) + sum(len(c.arguments) for c in m.tool_calls) for m in messages]
    total = sum(size[first:])
    target = total * min(keep_ratio, 1.0) * 0.9
    for cut in cuts:
        if sum(size[cut:]) <= target:
            return lead + messages[cut:]
    return lead + messages[cuts[-1]:]


class ContextFitProvider:
    """Applies the spec's ``context_overflow`` rule around an inner provider."""

    def __init__(self, inner: Any, rule: ContextRule) -> None:
        if rule not in CONTEXT_RULES:
            raise ValueError(f"context_overflow: unknown rule {rule!r}; one of {', '.join(CONTEXT_RULES)}")
        self.inner = inner
        self.rule = rule

    def check(self, request: ModelRequest) -> None:
        """The inner gate's pre-flight check (the engine refuses before counting a request)."""
        check = getattr(self.inner, "check", None)
        if check is not None:
            check(request)

    async def generate(self, request: ModelRequest) -> Generation:
        messages = request.messages
        for _ in range(MAX_ATTEMPTS):
            sent = request if messages is request.messages else dataclasses.replace(
                request, messages=messages)
            try:
                gen: Generation = await self.inner.generate(sent)
            except ProviderError as err:
                if not is_context_overflow(err):
                    raise
                shorter = None if self.rule == "too_long" else drop_oldest(messages, overflow_ratio(err))
                if shorter is None:
                    raise ProviderError(f"{TOO_LONG}: the prompt does not fit the model's context "
                                        f"(rule {self.rule}; {len(messages)} messages): {err}"[:400],
                                        retryable=False, status=err.status, code=err.code) from None
                messages = shorter
                continue
            dropped = len(request.messages) - len(messages)
            return gen if not dropped else gen.model_copy(update={"context_dropped": dropped})
        raise ProviderError(f"{TOO_LONG}: still over the context after {MAX_ATTEMPTS} shortened attempts",
                            retryable=False, status=400)

    async def aclose(self) -> None:
        await self.inner.aclose()
