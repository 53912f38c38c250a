"""WildChat (allenai/WildChat, WildChat-1M): ChatGPT conversations collected with user consent.

A row is one conversation: ``conversation`` is a list of ``{role, content, language,
timestamp, toxic, redacted, turn_identifier, ...}`` turns, with row-level ``model``,
``timestamp``, ``language``, ``toxic``, ``redacted``, ``country``, ``openai_moderation`` and
``detoxify_moderation``. Ids: ``conversation_id`` (WildChat) when present; otherwise
``conversation_hash`` (WildChat-1M), which is a hash of the *content* and so repeats for
identical conversations, hence the first turn's ``turn_identifier`` is appended when present.
"""

from __future__ import annotations

from typing import Any

from deploysim.hashing import content_hash
from deploysim.sources.formats import fields

NAME = "wildchat"
#: auto-detection order (lower first); the registry sorts formats by it
DETECT_PRIORITY = 42

#: Row keys WildChat has and LMSYS-Chat-1M does not (both share ``conversation``).
WILDCHAT_ONLY_KEYS: frozenset[str] = frozenset(
    ("conversation_hash", "detoxify_moderation", "toxic", "timestamp", "hashed_ip", "country")
)


def detect(row: dict[str, Any]) -> bool:
    return isinstance(row.get("conversation"), list | tuple) and not WILDCHAT_ONLY_KEYS.isdisjoint(row)


def convert(row: dict[str, Any], *, source: str, index: int) -> list[dict[str, Any]]:
    messages = fields.role_content_messages(row.get("conversation"), "conversation")
    first_turn = row["conversation"][0]  # an object: role_content_messages checked every turn
    extra: dict[str, Any] = {"dataset": "wildchat"}
    for key in ("toxic", "redacted"):
        if row.get(key) is not None:
            extra[key] = bool(row[key])
    country = fields.optional_str(row.get("country"), "country")
    if country is not None:
        extra["country"] = country
    moderation = fields.moderation_summary(row.get("openai_moderation"), "openai_moderation")
    if moderation is not None:
        extra["openai_moderation"] = moderation
    return [
        fields.conversation(
            _conversation_id(row, first_turn, messages),
            messages,
            source=source,
            deployed_model=fields.optional_str(row.get("model"), "model"),
            timestamp=fields.timestamp(row.get("timestamp"), "timestamp")
            or fields.timestamp(first_turn.get("timestamp"), "conversation[0].timestamp"),
            language=fields.optional_str(row.get("language"), "language")
            or fields.optional_str(first_turn.get("language"), "conversation[0].language"),
            extra=extra,
        )
    ]


def _conversation_id(row: dict[str, Any], first_turn: dict[str, Any], messages: list[dict[str, Any]]) -> str:
    conversation_id = fields.dataset_id(row.get("conversation_id"), "conversation_id")
    if conversation_id is not None:
        return conversation_id
    conversation_hash = fields.dataset_id(row.get("conversation_hash"), "conversation_hash")
    if conversation_hash is None:
        return content_hash(["wildchat", row.get("model"), messages])
    turn_identifier = fields.dataset_id(first_turn.get("turn_identifier"), "conversation[0].turn_identifier")
    return conversation_hash if turn_identifier is None else f"{conversation_hash}:{turn_identifier}"
