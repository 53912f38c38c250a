"""The provider protocol: one async ``generate``.

A provider turns a :class:`ModelRequest` into a :class:`Generation`. It does no retries, rate
limiting, caching or privacy checks: the engine wraps providers with those (see
``deploysim.engine`` and :mod:`deploysim.models.policy`), so every provider stays small and every
policy is written once.

Every request carries its *clearance* — how far its text was de-identified — as a required
field, so the send policy can refuse a request at the transport without knowing which stage,
verb or model role made it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from deploysim.models.spec import SamplingParams
from deploysim.records import DeidStatus, Message, ToolSpec, Usage

#: clearances any endpoint may receive (text that describes no private person)
CLEARED: frozenset[str] = frozenset({"deidentified", "synthetic", "public"})
CLEARANCES: frozenset[str] = frozenset({"raw", *CLEARED})


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """One model call. ``clearance`` is the de-identification state of the least cleared text
    in the request (``raw`` if any of it was not de-identified); ``purpose`` names the model
    role for logs (candidate, control, judge, toolsim, auditor, probe, ...)."""

    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...]
    params: SamplingParams
    clearance: DeidStatus
    purpose: str = ""
    #: the prefix's product context, for wrappers that condition on it (spike-ins)
    product_context: str | None = None

    def __post_init__(self) -> None:
        if self.clearance not in CLEARANCES:
            raise ValueError(f"unknown clearance {self.clearance!r}; one of {', '.join(sorted(CLEARANCES))}")

    @staticmethod
    def least_cleared(statuses: Sequence[DeidStatus]) -> DeidStatus:
        """The clearance of text combined from several sources: raw if any part is raw."""
        return "raw" if any(s not in CLEARED for s in statuses) else (statuses[0] if statuses else "public")


class Generation(BaseModel):
    """What one model call returned."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message: Message  # role "assistant"; text and/or tool calls (and reasoning when returned)
    finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = 0.0
    raw_id: str | None = None
    #: the model id and build fingerprint the endpoint reported, when it did
    reported_model: str | None = None
    fingerprint: str | None = None
    #: per-token log-probabilities when requested (``[{"token": ..., "logprob": ...}]``)
    logprobs: list[dict[str, Any]] | None = None
    #: further choices when ``n > 1`` was requested
    alternatives: tuple[Message, ...] = ()
    #: oldest prefix messages left out to fit the context (``context_overflow = "truncate_oldest"``)
    context_dropped: int = 0


class ProviderError(Exception):
    """A failed call. ``retryable`` says whether the same request may succeed later
    (429, 5xx, timeouts, resets, truncated bodies); ``retry_after`` is the server's hint."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None,
                 retry_after: float | None = None, rate_limited: bool = False,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        #: the endpoint's error code or type (``context_length_exceeded``, ...), when it gave one
        self.code = code
        self.retry_after = retry_after
        self.rate_limited = rate_limited


@runtime_checkable
class Provider(Protocol):
    """Anything with an async ``generate`` and ``aclose`` is a provider."""

    async def generate(self, request: ModelRequest) -> Generation: ...

    async def aclose(self) -> None: ...
