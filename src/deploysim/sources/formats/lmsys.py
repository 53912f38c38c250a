"""LMSYS-Chat-1M: conversations from the Chatbot Arena / Vicuna demo with 25 models.

A row is ``{conversation_id, model, conversation: [{role, content}], turn, language,
openai_moderation, redacted}``. The model is the deployed model for that conversation.
"""

from __future__ import annotations

from typing import Any

from deploysim.sources.formats import fields
from deploysim.sources.formats.base import RowError
from deploysim.sources.formats.wildchat import WILDCHAT_ONLY_KEYS

NAME = "lmsys"
#: auto-detection order (lower first); the registry sorts formats by it
DETECT_PRIORITY = 44


def detect(row: dict[str, Any]) -> bool:
    return (
        isinstance(row.get("conversation"), list | tuple)
        and "conversation_id" in row
        and WILDCHAT_ONLY_KEYS.isdisjoint(row)
    )


def convert(row: dict[str, Any], *, source: str, index: int) -> list[dict[str, Any]]:
    conversation_id = fields.dataset_id(row.get("conversation_id"), "conversation_id")
    if conversation_id is None:
        raise RowError("conversation_id: missing")
    messages = fields.role_content_messages(row.get("conversation"), "conversation")
    extra: dict[str, Any] = {"dataset": "lmsys-chat-1m"}
    if row.get("redacted") is not None:
        extra["redacted"] = bool(row["redacted"])
    moderation = fields.moderation_summary(row.get("openai_moderation"), "openai_moderation")
    if moderation is not None:
        extra["openai_moderation"] = moderation
    return [
        fields.conversation(
            conversation_id,
            messages,
            source=source,
            deployed_model=fields.optional_str(row.get("model"), "model"),
            language=fields.optional_str(row.get("language"), "language"),
            extra=extra,
        )
    ]
