"""Hand-written rows in the public schemas of each log format (texts are our own, not copied).

Shared by ``test_formats.py`` (conversion, errors, detector matrix) and
``test_formats_reader.py`` (fixture files read end to end through the reader core).
"""

from __future__ import annotations

import copy
from typing import Any

_MODERATION_CLEAN = {
    "categories": {"harassment": False, "self-harm": False, "sexual": False, "violence": False},
    "category_scores": {"harassment": 0.0002, "self-harm": 0.00001, "sexual": 0.0001, "violence": 0.0003},
    "flagged": False,
}
_MODERATION_VIOLENT = {
    "categories": {"harassment": False, "self-harm": False, "sexual": False, "violence": True},
    "category_scores": {"harassment": 0.01, "self-harm": 0.00002, "sexual": 0.0001, "violence": 0.91},
    "flagged": True,
}


def _wildchat_turn(role: str, content: str, turn_identifier: int, ts: str | None) -> dict[str, Any]:
    user = role == "user"
    return {
        "content": content,
        "country": "Canada" if user else None,
        "hashed_ip": "0f9d1c7a2b" if user else None,
        "header": {"accept-language": "en-CA,en;q=0.9", "user-agent": "Mozilla/5.0"} if user else None,
        "language": "English",
        "redacted": False,
        "role": role,
        "state": "Ontario" if user else None,
        "timestamp": ts,
        "toxic": False,
        "turn_identifier": turn_identifier,
    }


#: WildChat-1M: content-hash id + per-turn identifiers, row-level moderation lists.
WILDCHAT_ROW: dict[str, Any] = {
    "conversation_hash": "5b2a9f0c3e8d41a7b6c2d9e0f1a3b4c5",
    "model": "gpt-3.5-turbo-0613",
    "timestamp": "2023-08-14T09:21:37Z",
    "conversation": [
        _wildchat_turn("user", "Write a two-line poem about rain on a city street.", 1432001, None),
        _wildchat_turn(
            "assistant",
            "Grey drops drum the taxi roofs,\nneon puddles hold the proofs.",
            1432001,
            "2023-08-14T09:21:37Z",
        ),
        _wildchat_turn("user", "Now make it about a storm that knocks the power out.", 1432002, None),
        _wildchat_turn(
            "assistant",
            "Thunder splits the city light,\nblack towers sleep through the night.",
            1432002,
            "2023-08-14T09:22:05Z",
        ),
    ],
    "turn": 2,
    "language": "English",
    "openai_moderation": [_MODERATION_CLEAN, _MODERATION_CLEAN, _MODERATION_VIOLENT, _MODERATION_CLEAN],
    "detoxify_moderation": [{"toxicity": 0.0007, "threat": 0.0001}] * 4,
    "toxic": False,
    "redacted": True,
    "state": "Ontario",
    "country": "Canada",
    "hashed_ip": "0f9d1c7a2b",
    "header": {"accept-language": "en-CA,en;q=0.9", "user-agent": "Mozilla/5.0"},
}

#: The first WildChat release: a real ``conversation_id``, no per-turn metadata.
WILDCHAT_V1_ROW: dict[str, Any] = {
    "conversation_id": "b1c5e7a2d40f4c3e9a8b7f6e5d4c3b2a",
    "model": "gpt-4",
    "timestamp": "2023-05-02 17:45:10+00:00",
    "conversation": [
        {"role": "user", "content": "Bonjour, peux-tu résumer la Révolution française en une phrase ?"},
        {
            "role": "assistant",
            "content": "En 1789, la France renverse la monarchie absolue et proclame des droits universels.",
        },
    ],
    "turn": 1,
    "language": "French",
    "openai_moderation": [_MODERATION_CLEAN, _MODERATION_CLEAN],
    "detoxify_moderation": [{"toxicity": 0.0004}] * 2,
    "toxic": False,
    "redacted": False,
}

LMSYS_ROW: dict[str, Any] = {
    "conversation_id": "33f01939a744455c869cb234afca47f1",
    "model": "vicuna-13b",
    "conversation": [
        {"content": "What is the boiling point of water on top of Everest?", "role": "user"},
        {
            "content": "About 70 °C, because the air pressure there is roughly a third of sea level.",
            "role": "assistant",
        },
    ],
    "turn": 1,
    "language": "English",
    "openai_moderation": [_MODERATION_CLEAN, _MODERATION_CLEAN],
    "redacted": False,
}

SHAREGPT_ROW: dict[str, Any] = {
    "id": "QWJhYvA_0",
    "conversations": [
        {"from": "human", "value": "Explain a hash map to a ten-year-old."},
        {"from": "gpt", "value": "Imagine a wall of lockers where each name tells you which locker to open."},
        {"from": "human", "value": "What if two names want the same locker?"},
        {"from": "gpt", "value": "Then the locker holds a little list, and you check each name on it."},
    ],
}

#: The original crawl: ``items`` instead of ``conversations``, other assistant names, no id.
SHAREGPT_ITEMS_ROW: dict[str, Any] = {
    "items": [
        {"from": "system", "value": "You are Bing, a search assistant."},
        {"from": "user", "value": "Best time of year to visit Kyoto?"},
        {
            "from": "bing",
            "value": "Late March to early April for cherry blossoms, or November for autumn leaves.",
        },
    ],
}

#: LLaMA-Factory's ShareGPT tool variant.
SHAREGPT_TOOL_ROW: dict[str, Any] = {
    "conversations": [
        {"from": "human", "value": "Is it cold in Oslo right now?"},
        {"from": "function_call", "value": '{"name": "get_weather", "arguments": {"city": "Oslo"}}'},
        {"from": "observation", "value": '{"temp_c": -4, "sky": "clear"}'},
        {"from": "gpt", "value": "Yes: it is -4 °C with a clear sky in Oslo."},
    ],
    "system": "You are a weather assistant.",
    "tools": '[{"name": "get_weather", "description": "Current weather for a city", "parameters": '
    '{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]',
}


def _oasst(
    message_id: str, parent_id: str | None, role: str, text: str, replies: list[dict[str, Any]], **flags: Any
) -> dict[str, Any]:
    node = {
        "message_id": message_id,
        "text": text,
        "role": role,
        "lang": "en",
        "review_count": 3,
        "review_result": True,
        "deleted": False,
        "synthetic": False,
        "replies": replies,
    }
    if parent_id is not None:
        node["parent_id"] = parent_id
    node.update(flags)
    return node


#: Tree: P1 -> {A1, A2 -> {P2 -> A3, P3 (deleted) -> A5}, A4 (deleted)}.
#: Leaves after pruning: A1 and A3, so two conversations.
OASST_ROW: dict[str, Any] = {
    "message_tree_id": "tree-0001",
    "tree_state": "ready_for_export",
    "prompt": _oasst(
        "p1",
        None,
        "prompter",
        "How do I keep basil alive indoors?",
        [
            _oasst(
                "a1",
                "p1",
                "assistant",
                "Give it a sunny window and let the soil dry between waterings.",
                [],
                rank=0,
            ),
            _oasst(
                "a2",
                "p1",
                "assistant",
                "Basil wants six hours of light and warm, well-drained soil.",
                [
                    _oasst(
                        "p2",
                        "a2",
                        "prompter",
                        "My kitchen only gets morning sun. Is that enough?",
                        [
                            _oasst(
                                "a3",
                                "p2",
                                "assistant",
                                "Morning sun helps; add a small grow light in the afternoon.",
                                [],
                                synthetic=True,
                                model_name="sft-7b",
                            ),
                        ],
                    ),
                    _oasst(
                        "p3",
                        "a2",
                        "prompter",
                        "(spam)",
                        [
                            _oasst("a5", "p3", "assistant", "Reply below a deleted message.", []),
                        ],
                        deleted=True,
                    ),
                ],
                rank=1,
            ),
            _oasst("a4", "p1", "assistant", "Removed by moderators.", [], deleted=True, rank=2),
        ],
    ),
}

HH_ROW: dict[str, Any] = {
    "chosen": "\n\nHuman: How do I get a red wine stain out of a wool rug?\n\nAssistant: Blot it with cold "
    "water, then dab on a little wool-safe detergent.\n\nHuman: It already dried.\n\nAssistant:  "
    "Soften it with glycerin for an hour first, then blot as before.",
    "rejected": "\n\nHuman: How do I get a red wine stain out of a wool rug?\n\nAssistant: Blot it with cold "
    "water, then dab on a little wool-safe detergent.\n\nHuman: It already dried.\n\nAssistant: "
    "Then the rug is ruined.",
}

HH_RED_TEAM_ROW: dict[str, Any] = {
    "transcript": "\n\nHuman: Which household chemicals should never be mixed?\n\nAssistant: Bleach with "
    "ammonia or with acids: both release toxic gases, so store them apart.",
    "min_harmlessness_score_transcript": 1.27,
    "num_params": "52B",
    "model_type": "context distillation",
    "rating": 0.0,
    "task_description": "Asked about dangerous chemical combinations",
    "task_descripton_harmlessness_score": 0.81,
    "red_team_member_id": 17,
    "is_upworker": False,
    "tags": None,
}

TAU_ROW: dict[str, Any] = {
    "task_id": 7,
    "trial": 1,
    "reward": 1.0,
    "info": {
        "task": {"user_id": "ana_ruiz_1001", "actions": [], "instruction": "You are Ana.", "outputs": []},
        "source": "user",
        "user_cost": 0.002,
        "reward_info": {"reward": 1.0},
    },
    "traj": [
        {"role": "system", "content": "# Airline policy\nAlways confirm before changing a booking."},
        {"role": "user", "content": "Hi, what is the status of my reservation ZX91QP?"},
        {
            "content": None,
            "role": "assistant",
            "tool_calls": [
                {
                    "function": {
                        "arguments": '{"reservation_id":"ZX91QP"}',
                        "name": "get_reservation_details",
                    },
                    "id": "call_a1",
                    "type": "function",
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "call_a1",
            "name": "get_reservation_details",
            "content": '{"reservation_id": "ZX91QP", "status": "confirmed", "passengers": 2}',
        },
        {
            "content": None,
            "role": "assistant",
            "tool_calls": [
                {
                    "function": {"arguments": '{"expression":"2 * 35"}', "name": "calculate"},
                    "id": "call_a2",
                    "type": "function",
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_a2", "name": "calculate", "content": "70.0"},
        {
            "content": "Reservation ZX91QP is confirmed for 2 passengers; bags would cost $70 in total.",
            "role": "assistant",
        },
        {"role": "user", "content": "Great, thanks. ###STOP###"},
    ],
}

#: Rows of formats owned elsewhere, which none of these detectors may claim.
OPENAI_ROW: dict[str, Any] = {
    "id": "conv-1",
    "messages": [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Hi! How can I help?"},
    ],
}
ARENA_ANSWER_ROW: dict[str, Any] = {
    "uid": "0a1b2c",
    "ans_id": "xyz",
    "model": "gpt-4-0314",
    "messages": [
        {"role": "user", "content": "Sort a list in Rust."},
        {"role": "assistant", "content": {"answer": "Use `v.sort()`."}},
    ],
}
#: OASST flat export (one message per row) is not a conversation on its own.
OASST_FLAT_ROW: dict[str, Any] = {
    "message_id": "a1",
    "parent_id": "p1",
    "message_tree_id": "tree-0001",
    "text": "Hello",
    "role": "assistant",
    "lang": "en",
    "deleted": False,
}
#: A DPO-style pair whose strings are responses only, not HH transcripts.
DPO_PAIR_ROW: dict[str, Any] = {"prompt": "Name a prime.", "chosen": "7", "rejected": "8"}

#: Every fixture row under the format that must claim it ("" = none of this module set).
ROWS_BY_FORMAT: dict[str, list[dict[str, Any]]] = {
    "wildchat": [WILDCHAT_ROW, WILDCHAT_V1_ROW],
    "lmsys": [LMSYS_ROW],
    "sharegpt": [SHAREGPT_ROW, SHAREGPT_ITEMS_ROW, SHAREGPT_TOOL_ROW],
    "oasst": [OASST_ROW],
    "hh": [HH_ROW, HH_RED_TEAM_ROW],
    "tau": [TAU_ROW],
    "openai": [OPENAI_ROW, ARENA_ANSWER_ROW],
    "": [OASST_FLAT_ROW, DPO_PAIR_ROW],
}


def row(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of a fixture row with top-level keys replaced (``None`` deletes)."""
    copied = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            copied.pop(key, None)
        else:
            copied[key] = value
    return copied
