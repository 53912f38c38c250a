"""Anthropic HH-RLHF: transcripts written as ``\\n\\nHuman: … \\n\\nAssistant: …`` strings.

Preference rows (``{chosen, rejected}``) share the conversation up to the final assistant turn,
so only ``chosen`` becomes a conversation (``meta.extra.variant = "chosen"``): emitting
``rejected`` too would count every shared user turn twice when the sampler draws turns
uniformly. Red-team rows (``{transcript, rating, task_description, ...}``) give their
``transcript``. A final ``Assistant:`` turn with no text (the log ends on an unanswered user
turn) is dropped and flagged as ``meta.extra.empty_final_response``; any other empty turn,
text before the first speaker marker, or a transcript without a ``Human:`` turn is a row error.
HH rows carry no id, so the id is a content hash of the transcript text(s).
"""

from __future__ import annotations

import re
from typing import Any

from deploysim.hashing import content_hash
from deploysim.sources.formats import fields
from deploysim.sources.formats.base import RowError

NAME = "hh"
#: auto-detection order (lower first); the registry sorts formats by it
DETECT_PRIORITY = 30

ROLES: dict[str, str] = {"Human": "user", "Assistant": "assistant"}
#: A speaker marker starts a turn at the start of the text or after a blank line.
_MARKER = re.compile(r"(?:^|\n\n)(Human|Assistant):")
#: Red-team metadata worth keeping (the member id and crowd platform are not).
_RED_TEAM_KEYS = (
    "rating",
    "task_description",
    "tags",
    "model_type",
    "num_params",
    "min_harmlessness_score_transcript",
)


def detect(row: dict[str, Any]) -> bool:
    transcript = row.get("chosen") if "chosen" in row else row.get("transcript")
    return isinstance(transcript, str) and transcript.lstrip().startswith("Human:")


def convert(row: dict[str, Any], *, source: str, index: int) -> list[dict[str, Any]]:
    if "chosen" in row:
        chosen = fields.text(row["chosen"], "chosen")
        rejected = fields.optional_str(row.get("rejected"), "rejected")
        messages, unanswered = parse_transcript(chosen, "chosen")
        conversation_id = content_hash(["hh", chosen, rejected])
        extra: dict[str, Any] = {"dataset": "hh-rlhf", "variant": "chosen"}
    elif "transcript" in row:
        transcript = fields.text(row["transcript"], "transcript")
        messages, unanswered = parse_transcript(transcript, "transcript")
        conversation_id = content_hash(["hh-red-team", transcript])
        extra = {"dataset": "hh-rlhf-red-team"}
        extra.update({key: row[key] for key in _RED_TEAM_KEYS if row.get(key) is not None})
    else:
        raise RowError("chosen: missing (expected an HH-RLHF 'chosen' or red-team 'transcript' string)")
    if unanswered:
        extra["empty_final_response"] = True
    return [fields.conversation(conversation_id, messages, source=source, extra=extra)]


def parse_transcript(transcript: str, path: str) -> tuple[list[dict[str, Any]], bool]:
    """Split an HH transcript into messages; the flag says an empty final assistant turn was dropped.

    Turn text is stripped of surrounding whitespace. Consecutive turns by the same speaker
    (they occur in the published data) are kept as separate messages, as written.
    """
    pieces = _MARKER.split(transcript.lstrip())
    if pieces[0].strip():
        raise RowError(f"{path}: text before the first 'Human:' marker: {pieces[0].strip()[:60]!r}")
    turns = [(pieces[i], pieces[i + 1].strip()) for i in range(1, len(pieces), 2)]
    if not any(speaker == "Human" for speaker, _ in turns):
        raise RowError(f"{path}: no '\\n\\nHuman:' turn")
    unanswered = turns[-1][0] == "Assistant" and not turns[-1][1]
    if unanswered:
        turns.pop()
    messages = []
    for number, (speaker, content) in enumerate(turns, start=1):
        if not content:
            raise RowError(f"{path}: turn {number} ({speaker}) is empty")
        messages.append(fields.message(ROLES[speaker], content))
    return messages, unanswered
