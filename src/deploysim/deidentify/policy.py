"""The loopback policy: text that was not de-identified never leaves this machine.

A prefix whose ``context.deidentified`` is ``raw`` is refused by every provider whose endpoint
is not on loopback (127.0.0.0/8, ``::1``, ``localhost``), unless the run configuration sets
``[privacy] allow_raw_to_remote = true``. Synthetic data (``synthetic``) describes nobody and
is allowed. The simulate stage calls the guard before each request; a refusal becomes an error
completion that names the reason, so nothing is sent and nothing is silently skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from deploysim.deidentify.config import PrivacyConfig
from deploysim.models.wire import is_loopback_url
from deploysim.records import Prefix

__all__ = [
    "ALLOWED_ANYWHERE",
    "PrivacyRefusal",
    "check_prefix_allowed",
    "describe_policy",
    "is_loopback_url",
    "provider_guard",
]

#: de-identification states that any endpoint may receive
ALLOWED_ANYWHERE: frozenset[str] = frozenset({"deidentified", "synthetic"})


class PrivacyRefusal(PermissionError):
    """A prefix that was not de-identified was about to go to a non-loopback endpoint."""


class _HasLoopback(Protocol):
    is_loopback: bool


def check_prefix_allowed(prefix: Prefix, *, endpoint_is_loopback: bool, privacy: PrivacyConfig) -> None:
    """Raise :class:`PrivacyRefusal` unless ``prefix`` may be sent to this endpoint."""
    status = prefix.context.deidentified
    if endpoint_is_loopback or status in ALLOWED_ANYWHERE or privacy.allow_raw_to_remote:
        return
    raise PrivacyRefusal(
        f"prefix {prefix.id} is {status!r} (not de-identified) and the endpoint is not on loopback; "
        "run `deploysim deidentify --run RUN_DIR` first, or set [privacy] allow_raw_to_remote = true "
        "to send raw text deliberately"
    )


def provider_guard(
    privacy: PrivacyConfig, *, endpoint_is_loopback: bool | None = None
) -> Callable[[Prefix, _HasLoopback], None]:
    """The simulate stage's guard: ``guard(prefix, provider)`` checks against the provider's
    ``is_loopback``. ``endpoint_is_loopback`` overrides it (tests treat a loopback server as
    remote this way)."""

    def guard(prefix: Prefix, provider: _HasLoopback) -> None:
        loopback = provider.is_loopback if endpoint_is_loopback is None else endpoint_is_loopback
        check_prefix_allowed(prefix, endpoint_is_loopback=loopback, privacy=privacy)

    return guard


def describe_policy(privacy: PrivacyConfig) -> dict[str, Any]:
    """What reports and exports print about the policy that applied to a run."""
    if privacy.allow_raw_to_remote:
        text = (
            "Opt-out: prefixes that were not de-identified were allowed to reach non-loopback "
            "endpoints ([privacy] allow_raw_to_remote = true)."
        )
    else:
        text = (
            "Prefixes that were not de-identified were refused by every endpoint not on loopback "
            "(127.0.0.0/8, ::1, localhost); de-identified and synthetic prefixes were allowed."
        )
    return {
        "allow_raw_to_remote": privacy.allow_raw_to_remote,
        "allowed_anywhere": sorted(ALLOWED_ANYWHERE),
        "statement": text,
    }
