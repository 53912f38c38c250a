"""The send policy: text that was not de-identified never leaves this machine.

It is enforced where a request leaves the process. Every provider the registry builds is
wrapped in a :class:`GatedProvider`, whose ``generate`` compares the request's required
``clearance`` with the endpoint's locality *before* the provider sees the request, so no verb,
stage, model role (candidate, control, judge, tool simulator, auditor, probe) or Python caller
that goes through the registry can send raw text to a remote endpoint — unless the run sets
``[privacy] allow_raw_to_remote = true``. Locality comes from the model spec (the registry's
provider plugin decides it: an endpoint URL on 127.0.0.0/8, ``::1`` or ``localhost``, or an
in-process model), never from the provider object's own say-so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deploysim.models.base import CLEARED, Generation, ModelRequest, Provider, ProviderError


class PrivacyRefusal(ProviderError):
    """A request with text that was not de-identified was about to go to a remote endpoint."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


@dataclass(frozen=True)
class SendPolicy:
    """What may be sent where. Built once per run from ``[privacy]``; required wherever a
    provider is built (there is no default)."""

    allow_raw_to_remote: bool

    def check(self, request: ModelRequest, *, local: bool, endpoint: str) -> None:
        """Raise :class:`PrivacyRefusal` unless ``request`` may go to this endpoint."""
        if local or request.clearance in CLEARED or self.allow_raw_to_remote:
            return
        role = f" ({request.purpose})" if request.purpose else ""
        raise PrivacyRefusal(
            f"refused: a request{role} carries text that was not de-identified and {endpoint} is not on "
            "loopback; de-identify the run first (`deploysim deidentify --run RUN_DIR`) or set "
            "[privacy] allow_raw_to_remote = true to send raw text deliberately")

    def describe(self) -> dict[str, Any]:
        """What reports and exports print about the policy that applied to a run."""
        if self.allow_raw_to_remote:
            text = ("Opt-out: text that was not de-identified was allowed to reach non-loopback endpoints "
                    "([privacy] allow_raw_to_remote = true).")
        else:
            text = ("Text that was not de-identified was refused by every endpoint not on loopback "
                    "(127.0.0.0/8, ::1, localhost) for every model role; de-identified, synthetic and "
                    "public text was allowed.")
        return {"allow_raw_to_remote": self.allow_raw_to_remote, "allowed_anywhere": sorted(CLEARED),
                "enforced_at": "transport (every provider built by the registry)", "statement": text}


class GatedProvider:
    """A provider behind the send policy. Refusals raise before the inner provider is called,
    so a refused request opens no connection and resolves no host name."""

    def __init__(self, inner: Provider, policy: SendPolicy, *, local: bool, endpoint: str) -> None:
        self.inner = inner
        self.policy = policy
        self.is_loopback = local
        self.endpoint = endpoint

    def check(self, request: ModelRequest) -> None:
        """Raise :class:`PrivacyRefusal` if the policy refuses ``request`` here (callers may ask
        before queueing; ``generate`` asks again regardless)."""
        self.policy.check(request, local=self.is_loopback, endpoint=self.endpoint)

    async def generate(self, request: ModelRequest) -> Generation:
        self.check(request)
        return await self.inner.generate(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
