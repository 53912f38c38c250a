"""Per-format converters: exact conversions of fixture rows, row errors, detector matrix."""

from __future__ import annotations

from typing import Any

import pytest

from deploysim.records import Conversation
from deploysim.sources.formats import FORMATS, hh, lmsys, oasst, openai, sharegpt, tau, wildchat
from deploysim.sources.formats.base import NON_TEXT_KEY, RowError
from tests.format_rows import (
    HH_RED_TEAM_ROW,
    HH_ROW,
    LMSYS_ROW,
    OASST_ROW,
    ROWS_BY_FORMAT,
    SHAREGPT_ITEMS_ROW,
    SHAREGPT_ROW,
    SHAREGPT_TOOL_ROW,
    TAU_ROW,
    WILDCHAT_ROW,
    WILDCHAT_V1_ROW,
    row,
)

MODULES = {m.NAME: m for m in (wildchat, lmsys, sharegpt, oasst, hh, tau, openai)}


def convert_one(module: Any, fixture: dict[str, Any]) -> dict[str, Any]:
    conversations = module.convert(fixture, source="fixture.jsonl", index=3)
    assert len(conversations) == 1
    return conversations[0]


def turns(conversation: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in conversation["messages"]]


def raises_reason(module: Any, fixture: dict[str, Any]) -> str:
    with pytest.raises(RowError) as caught:
        module.convert(fixture, source="fixture.jsonl", index=0)
    return caught.value.reason


# ---- shape: every conversion is exactly a Conversation.model_dump(mode="json") -------------


@pytest.mark.parametrize("name", ["wildchat", "lmsys", "sharegpt", "oasst", "hh", "tau"])
def test_converted_fixtures_have_the_conversation_json_shape(name: str) -> None:
    for fixture in ROWS_BY_FORMAT[name]:
        for converted in MODULES[name].convert(fixture, source="s", index=0):
            dumped = Conversation.model_validate(converted).model_dump(mode="json")
            for message in dumped["messages"]:
                assert message.pop("provenance") is None and message.pop("reasoning") is None
            assert dumped == converted


# ---- WildChat ---------------------------------------------------------------------------------


def test_wildchat_conversion() -> None:
    conv = convert_one(wildchat, WILDCHAT_ROW)
    assert conv["id"] == "5b2a9f0c3e8d41a7b6c2d9e0f1a3b4c5:1432001"
    assert turns(conv) == [
        ("user", "Write a two-line poem about rain on a city street."),
        ("assistant", "Grey drops drum the taxi roofs,\nneon puddles hold the proofs."),
        ("user", "Now make it about a storm that knocks the power out."),
        ("assistant", "Thunder splits the city light,\nblack towers sleep through the night."),
    ]
    assert conv["meta"] == {
        "source": "fixture.jsonl",
        "deployed_model": "gpt-3.5-turbo-0613",
        "product_context": None,
        "timestamp": "2023-08-14T09:21:37Z",
        "language": "English",
        "deidentified": "raw",
        "extra": {
            "dataset": "wildchat",
            "toxic": False,
            "redacted": True,
            "country": "Canada",
            "openai_moderation": {"flagged": True, "flagged_messages": [2], "categories": ["violence"]},
        },
    }
    assert conv["tools"] == []


def test_wildchat_v1_uses_conversation_id() -> None:
    conv = convert_one(wildchat, WILDCHAT_V1_ROW)
    assert conv["id"] == "b1c5e7a2d40f4c3e9a8b7f6e5d4c3b2a"
    assert conv["meta"]["language"] == "French"
    assert conv["meta"]["timestamp"] == "2023-05-02 17:45:10+00:00"
    assert conv["meta"]["extra"]["openai_moderation"] == {
        "flagged": False,
        "flagged_messages": [],
        "categories": [],
    }


def test_wildchat_id_falls_back_to_hash_alone_then_content() -> None:
    no_turn_ids = row(
        WILDCHAT_ROW,
        conversation=[
            {k: v for k, v in t.items() if k != "turn_identifier"} for t in WILDCHAT_ROW["conversation"]
        ],
    )
    assert convert_one(wildchat, no_turn_ids)["id"] == "5b2a9f0c3e8d41a7b6c2d9e0f1a3b4c5"
    anonymous = row(no_turn_ids, conversation_hash=None)
    first, again = convert_one(wildchat, anonymous)["id"], convert_one(wildchat, row(anonymous))["id"]
    assert first == again and len(first) == 32
    assert first != convert_one(wildchat, row(anonymous, model="gpt-4"))["id"]


def test_wildchat_parquet_datetime_timestamp_is_iso() -> None:
    from datetime import UTC, datetime

    conv = convert_one(wildchat, row(WILDCHAT_ROW, timestamp=datetime(2023, 8, 14, 9, 21, 37, tzinfo=UTC)))
    assert conv["meta"]["timestamp"] == "2023-08-14T09:21:37+00:00"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"conversation": "hi"}, "conversation: expected a list, got str"),
        ({"conversation": []}, "conversation: no turns"),
        (
            {"conversation": [{"role": "narrator", "content": "x"}]},
            "conversation[0].role: unknown role 'narrator'",
        ),
        (
            {"conversation": [{"role": "user", "content": 5}]},
            "conversation[0].content: expected a string, got int",
        ),
        (
            {"openai_moderation": [{"flagged": True, "categories": "violence"}]},
            "openai_moderation[0].categories: expected an object, got str",
        ),
        ({"model": 4}, "model: expected a string, got int"),
    ],
)
def test_wildchat_row_errors(changes: dict[str, Any], reason: str) -> None:
    assert raises_reason(wildchat, row(WILDCHAT_ROW, **changes)).startswith(reason)


# ---- LMSYS-Chat-1M ----------------------------------------------------------------------------


def test_lmsys_conversion() -> None:
    conv = convert_one(lmsys, LMSYS_ROW)
    assert conv["id"] == "33f01939a744455c869cb234afca47f1"
    assert turns(conv) == [
        ("user", "What is the boiling point of water on top of Everest?"),
        ("assistant", "About 70 °C, because the air pressure there is roughly a third of sea level."),
    ]
    assert conv["meta"]["deployed_model"] == "vicuna-13b"
    assert conv["meta"]["language"] == "English"
    assert conv["meta"]["timestamp"] is None
    assert conv["meta"]["extra"] == {
        "dataset": "lmsys-chat-1m",
        "redacted": False,
        "openai_moderation": {"flagged": False, "flagged_messages": [], "categories": []},
    }


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"conversation_id": ""}, "conversation_id: missing"),
        ({"conversation_id": 1.5}, "conversation_id: expected an id (string or integer), got float"),
        (
            {"conversation": [{"role": "user", "content": "a"}, {"role": "gpt", "content": "b"}]},
            "conversation[1].role: unknown role 'gpt'",
        ),
        (
            {"conversation": [{"role": "user", "content": "a"}, "b"]},
            "conversation[1]: expected an object, got str",
        ),
        ({"openai_moderation": {"flagged": False}}, "openai_moderation: expected a list, got dict"),
    ],
)
def test_lmsys_row_errors(changes: dict[str, Any], reason: str) -> None:
    assert raises_reason(lmsys, row(LMSYS_ROW, **changes)).startswith(reason)


# ---- ShareGPT ---------------------------------------------------------------------------------


def test_sharegpt_conversion() -> None:
    conv = convert_one(sharegpt, SHAREGPT_ROW)
    assert conv["id"] == "QWJhYvA_0"
    assert turns(conv) == [
        ("user", "Explain a hash map to a ten-year-old."),
        ("assistant", "Imagine a wall of lockers where each name tells you which locker to open."),
        ("user", "What if two names want the same locker?"),
        ("assistant", "Then the locker holds a little list, and you check each name on it."),
    ]
    assert conv["meta"]["extra"] == {"dataset": "sharegpt"}


def test_sharegpt_items_variant_maps_speaker_names_and_hashes_id() -> None:
    conv = convert_one(sharegpt, SHAREGPT_ITEMS_ROW)
    assert turns(conv) == [
        ("system", "You are Bing, a search assistant."),
        ("user", "Best time of year to visit Kyoto?"),
        ("assistant", "Late March to early April for cherry blossoms, or November for autumn leaves."),
    ]
    assert len(conv["id"]) == 32
    assert conv["id"] == convert_one(sharegpt, row(SHAREGPT_ITEMS_ROW))["id"]


def test_sharegpt_tool_variant() -> None:
    conv = convert_one(sharegpt, SHAREGPT_TOOL_ROW)
    assert conv["messages"] == [
        {
            "role": "system",
            "content": "You are a weather assistant.",
            "tool_calls": [],
            "tool_call_id": None,
            "name": None,
        },
        {
            "role": "user",
            "content": "Is it cold in Oslo right now?",
            "tool_calls": [],
            "tool_call_id": None,
            "name": None,
        },
        {
            "role": "assistant",
            "content": "",
            "tool_call_id": None,
            "name": None,
            "tool_calls": [{"id": "call_1", "name": "get_weather", "arguments": '{"city":"Oslo"}'}],
        },
        {
            "role": "tool",
            "content": '{"temp_c": -4, "sky": "clear"}',
            "tool_calls": [],
            "tool_call_id": "call_1",
            "name": "get_weather",
        },
        {
            "role": "assistant",
            "content": "Yes: it is -4 °C with a clear sky in Oslo.",
            "tool_calls": [],
            "tool_call_id": None,
            "name": None,
        },
    ]
    assert conv["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        }
    ]


def test_sharegpt_multimodal_turns_are_listed_as_non_text() -> None:
    llava = {
        "id": "img-1",
        "image": "coco/000123.jpg",
        "conversations": [
            {"from": "human", "value": "<image>\nWhat is on the table?"},
            {"from": "gpt", "value": "A bowl of oranges."},
        ],
    }
    conv = convert_one(sharegpt, llava)
    assert conv["meta"]["extra"][NON_TEXT_KEY] == [0]


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        (
            {"id": "x", "conversations": [{"from": "narrator", "value": "Once upon a time"}]},
            "conversations[0].from: unknown role 'narrator'",
        ),
        ({"id": "x", "conversations": [{"from": "human"}]}, "conversations[0].value: missing"),
        (
            {"id": "x", "conversations": [{"from": "human", "value": ["a"]}]},
            "conversations[0].value: expected a string, got list",
        ),
        ({"id": "x", "conversations": []}, "conversations: no turns"),
        ({"id": "x", "items": "nope"}, "items: expected a list, got str"),
        (
            {
                "id": "x",
                "conversations": [{"from": "human", "value": "q"}, {"from": "function_call", "value": "{"}],
            },
            "conversations[1].value: function_call is not valid JSON",
        ),
        (
            {
                "id": "x",
                "conversations": [
                    {"from": "human", "value": "q"},
                    {"from": "function_call", "value": '{"arguments": {}}'},
                ],
            },
            "conversations[1].value.name: missing tool name",
        ),
        (row(SHAREGPT_TOOL_ROW, tools="[{"), "tools: not valid JSON"),
    ],
)
def test_sharegpt_row_errors(fixture: dict[str, Any], reason: str) -> None:
    assert raises_reason(sharegpt, fixture).startswith(reason)


# ---- OpenAssistant trees ----------------------------------------------------------------------


def test_oasst_tree_gives_one_conversation_per_leaf_and_prunes_deleted() -> None:
    conversations = oasst.convert(OASST_ROW, source="trees.jsonl", index=0)
    assert [c["id"] for c in conversations] == ["tree-0001:a1", "tree-0001:a3"]
    assert turns(conversations[0]) == [
        ("user", "How do I keep basil alive indoors?"),
        ("assistant", "Give it a sunny window and let the soil dry between waterings."),
    ]
    assert turns(conversations[1]) == [
        ("user", "How do I keep basil alive indoors?"),
        ("assistant", "Basil wants six hours of light and warm, well-drained soil."),
        ("user", "My kitchen only gets morning sun. Is that enough?"),
        ("assistant", "Morning sun helps; add a small grow light in the afternoon."),
    ]
    assert [c["meta"]["extra"]["synthetic"] for c in conversations] == [False, True]
    assert [c["meta"]["extra"]["shared_prefix_messages"] for c in conversations] == [0, 1]
    assert all(c["meta"]["language"] == "en" for c in conversations)
    assert conversations[0]["meta"]["extra"] == {
        "dataset": "oasst",
        "message_tree_id": "tree-0001",
        "synthetic": False,
        "failed_review": False,
        "shared_prefix_messages": 0,
        "tree_state": "ready_for_export",
    }


def test_oasst_parent_of_only_deleted_replies_becomes_a_leaf() -> None:
    tree = row(OASST_ROW)
    for reply in tree["prompt"]["replies"]:
        reply["deleted"] = True
    (only,) = oasst.convert(tree, source="s", index=0)
    assert only["id"] == "tree-0001:p1"
    assert turns(only) == [("user", "How do I keep basil alive indoors?")]


def test_oasst_flags_failed_review() -> None:
    tree = row(OASST_ROW)
    tree["prompt"]["replies"][0]["review_result"] = False
    flags = [c["meta"]["extra"]["failed_review"] for c in oasst.convert(tree, source="s", index=0)]
    assert flags == [True, False]


def test_oasst_deep_tree_does_not_recurse() -> None:
    root: dict[str, Any] = {"message_id": "m0", "text": "q0", "role": "prompter", "replies": []}
    node = root
    for depth in range(1, 3000):
        child = {
            "message_id": f"m{depth}",
            "text": f"t{depth}",
            "role": "assistant" if depth % 2 else "prompter",
            "replies": [],
        }
        node["replies"].append(child)
        node = child
    (deep,) = oasst.convert({"message_tree_id": "deep", "prompt": root}, source="s", index=0)
    assert len(deep["messages"]) == 3000 and deep["id"] == "deep:m2999"


def test_oasst_row_errors() -> None:
    deleted_root = row(OASST_ROW)
    deleted_root["prompt"]["deleted"] = True
    assert raises_reason(oasst, deleted_root) == "prompt.deleted: the root message is deleted"
    bad_role = row(OASST_ROW)
    bad_role["prompt"]["replies"][1]["replies"][0]["role"] = "moderator"
    assert raises_reason(oasst, bad_role).startswith(
        "prompt.replies[1].replies[0].role: unknown role 'moderator'"
    )
    bad_text = row(OASST_ROW)
    bad_text["prompt"]["replies"][0]["text"] = {"md": "x"}
    assert raises_reason(oasst, bad_text) == "prompt.replies[0].text: expected a string, got dict"
    no_leaf_id = row(OASST_ROW)
    del no_leaf_id["prompt"]["replies"][0]["message_id"]
    assert raises_reason(oasst, no_leaf_id) == "prompt.replies[0].message_id: missing"
    assert raises_reason(oasst, row(OASST_ROW, message_tree_id="")) == "message_tree_id: missing"


# ---- HH-RLHF ----------------------------------------------------------------------------------


def test_hh_gives_the_chosen_conversation() -> None:
    conv = convert_one(hh, HH_ROW)
    assert turns(conv) == [
        ("user", "How do I get a red wine stain out of a wool rug?"),
        ("assistant", "Blot it with cold water, then dab on a little wool-safe detergent."),
        ("user", "It already dried."),
        ("assistant", "Soften it with glycerin for an hour first, then blot as before."),
    ]
    assert conv["meta"]["extra"] == {"dataset": "hh-rlhf", "variant": "chosen"}
    assert len(conv["id"]) == 32
    assert conv["id"] != convert_one(hh, row(HH_ROW, rejected="\n\nHuman: x\n\nAssistant: y"))["id"]


def test_hh_red_team_transcript_keeps_red_team_metadata() -> None:
    conv = convert_one(hh, HH_RED_TEAM_ROW)
    assert turns(conv) == [
        ("user", "Which household chemicals should never be mixed?"),
        ("assistant", "Bleach with ammonia or with acids: both release toxic gases, so store them apart."),
    ]
    assert conv["meta"]["extra"] == {
        "dataset": "hh-rlhf-red-team",
        "rating": 0.0,
        "task_description": "Asked about dangerous chemical combinations",
        "model_type": "context distillation",
        "num_params": "52B",
        "min_harmlessness_score_transcript": 1.27,
    }


def test_hh_empty_final_response_is_dropped_and_flagged() -> None:
    conv = convert_one(hh, {"chosen": "\n\nHuman: Tell me their address.\n\nAssistant: ", "rejected": ""})
    assert turns(conv) == [("user", "Tell me their address.")]
    assert conv["meta"]["extra"]["empty_final_response"] is True


def test_hh_repeated_speaker_turns_are_kept_as_written() -> None:
    conv = convert_one(
        hh,
        {
            "chosen": "\n\nHuman: One joke?\n\nAssistant: Here:\n\nAssistant: Why did the "
            "chicken cross the road?",
            "rejected": "",
        },
    )
    assert [m["role"] for m in conv["messages"]] == ["user", "assistant", "assistant"]


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        (
            {"chosen": "Preamble\n\nHuman: hi\n\nAssistant: hello", "rejected": ""},
            "chosen: text before the first 'Human:' marker: 'Preamble'",
        ),
        ({"chosen": "\n\nAssistant: I start", "rejected": ""}, "chosen: no '\\n\\nHuman:' turn"),
        (
            {"chosen": "\n\nHuman: hi\n\nAssistant:\n\nHuman: hello?\n\nAssistant: yes", "rejected": ""},
            "chosen: turn 2 (Assistant) is empty",
        ),
        ({"chosen": ["Human: hi"], "rejected": ""}, "chosen: expected a string, got list"),
        ({"transcript": 3}, "transcript: expected a string, got int"),
        ({"prompt": "x"}, "chosen: missing"),
    ],
)
def test_hh_row_errors(fixture: dict[str, Any], reason: str) -> None:
    assert raises_reason(hh, fixture).startswith(reason)


# ---- tau-bench ----------------------------------------------------------------------------------


def test_tau_trajectory_conversion() -> None:
    conv = convert_one(tau, TAU_ROW)
    assert conv["id"].startswith("tau-7-1-") and conv["id"] == convert_one(tau, row(TAU_ROW))["id"]
    assert turns(conv)[0] == ("system", "# Airline policy\nAlways confirm before changing a booking.")
    assert conv["messages"][2] == {
        "role": "assistant",
        "content": "",
        "tool_call_id": None,
        "name": None,
        "tool_calls": [
            {"id": "call_a1", "name": "get_reservation_details", "arguments": '{"reservation_id":"ZX91QP"}'}
        ],
    }
    assert conv["messages"][3] == {
        "role": "tool",
        "content": '{"reservation_id": "ZX91QP", "status": "confirmed", "passengers": 2}',
        "tool_calls": [],
        "tool_call_id": "call_a1",
        "name": "get_reservation_details",
    }
    assert [m["role"] for m in conv["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    assert conv["tools"] == [
        {
            "name": "get_reservation_details",
            "description": "",
            "parameters": {"type": "object", "properties": {"reservation_id": {"type": "string"}}},
        },
        {
            "name": "calculate",
            "description": "",
            "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}},
        },
    ]
    assert conv["meta"]["product_context"] == "customer_support"
    assert conv["meta"]["extra"] == {
        "dataset": "tau-bench",
        "task_id": 7,
        "tools_inferred": True,
        "trial": 1,
        "reward": 1.0,
        "ended_by": "user",
    }


def test_tau_tools_given_in_the_row_are_used() -> None:
    spec = {
        "type": "function",
        "function": {
            "name": "calculate",
            "description": "Evaluate arithmetic",
            "parameters": {"type": "object"},
        },
    }
    conv = convert_one(tau, row(TAU_ROW, tools=[spec]))
    assert conv["tools"] == [
        {"name": "calculate", "description": "Evaluate arithmetic", "parameters": {"type": "object"}}
    ]
    assert conv["meta"]["extra"]["tools_inferred"] is False


def test_tau_inferred_types_merge_across_calls() -> None:
    messages = [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "1", "name": "pay", "arguments": '{"amount": 5, "note": null}'},
                {"id": "2", "name": "pay", "arguments": '{"amount": 5.5, "note": "x"}'},
                {"id": "3", "name": "pay", "arguments": "not json"},
            ],
        }
    ]
    assert tau.inferred_tools(messages) == [
        {
            "name": "pay",
            "description": "",
            "parameters": {
                "type": "object",
                "properties": {"amount": {"type": "number"}, "note": {"type": ["null", "string"]}},
            },
        }
    ]


def test_tau_row_errors() -> None:
    orphan = row(TAU_ROW)
    orphan["traj"][3]["tool_call_id"] = "call_zz"
    assert raises_reason(tau, orphan) == "traj[3].tool_call_id: 'call_zz' matches no earlier tool call"
    bad_role = row(TAU_ROW)
    bad_role["traj"][1]["role"] = "customer"
    assert raises_reason(tau, bad_role).startswith("traj[1].role: unknown role 'customer'")
    bad_call = row(TAU_ROW)
    bad_call["traj"][2]["tool_calls"][0]["function"]["arguments"] = 12
    assert raises_reason(tau, bad_call).startswith(
        "traj[2].tool_calls[0].function.arguments: expected JSON text"
    )
    assert raises_reason(tau, row(TAU_ROW, task_id={"a": 1})).startswith("task_id: expected an id")


# ---- detectors --------------------------------------------------------------------------------


@pytest.mark.parametrize("detector_name", sorted(MODULES))
def test_detector_matrix(detector_name: str) -> None:
    """Each detector accepts its own fixture rows and rejects every other format's rows."""
    detector = MODULES[detector_name]
    for owner, rows in ROWS_BY_FORMAT.items():
        for index, fixture in enumerate(rows):
            assert detector.detect(fixture) is (owner == detector_name), (owner, index)


def test_formats_tuple_auto_detects_every_fixture_row() -> None:
    for owner, rows in ROWS_BY_FORMAT.items():
        for fixture in rows:
            claimed = [module.NAME for module in FORMATS if module.detect(fixture)]
            assert claimed == ([owner] if owner else []), claimed


def test_builtin_formats_register_through_the_entry_points_in_detection_order() -> None:
    from deploysim.registry import Registry

    assert Registry.discover().format_names() == [module.NAME for module in FORMATS]
