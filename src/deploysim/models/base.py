"""The provider protocol: one async ``generate``.

A provider turns (messages, tools, params) into a :class:`Generation`. It does no retries,
rate limiting or caching: the engine wraps providers with those (see ``deploysim.engine``),
so every provider stays small and every policy is written once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from deploysim.models.spec import SamplingParams
from deploysim.records import Message, ToolSpec, Usage


class Generation(BaseModel):
    """What one model call returned."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message: Message  # role "assistant"; text and/or tool calls
    finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = 0.0
    raw_id: str | None = None
    #: per-token log-probabilities when requested (``[{"token": ..., "logprob": ...}]``)
    logprobs: list[dict[str, Any]] | None = None
    #: further choices when ``n > 1`` was requested
    alternatives: tuple[Message, ...] = ()


class ProviderError(Exception):
    """A failed call. ``retryable`` says whether the same request may succeed later
    (429, 5xx, timeouts, resets, truncated bodies); ``retry_after`` is the server's hint."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None,
                 retry_after: float | None = None, rate_limited: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.rate_limited = rate_limited


@runtime_checkable
class Provider(Protocol):
    """Anything with an async ``generate`` and ``aclose`` is a provider."""

    #: true when every request goes to 127.0.0.0/8 or ::1 (used by the privacy policy)
    is_loopback: bool

    async def generate(self, messages: Sequence[Message], tools: Sequence[ToolSpec],
                       params: SamplingParams) -> Generation: ...

    async def aclose(self) -> None: ...
