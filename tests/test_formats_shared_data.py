"""The converters on every row of the real public files in ../shared/data (skipped when absent).

Counts are checked against independent computations on the raw rows, not against the
converters' own output.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from deploysim.records import Conversation
from deploysim.sources.formats import FORMATS, hh, oasst, tau
from deploysim.sources.validate import check_conversation

pytestmark = pytest.mark.shared_data


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def detected(row: dict[str, Any]) -> list[str]:
    return [module.NAME for module in FORMATS if module.detect(row)]


def count_leaves(message: dict[str, Any]) -> int:
    """Leaves of an OASST tree once deleted messages (and what hangs below them) are pruned."""
    live = [reply for reply in message.get("replies") or [] if not reply.get("deleted")]
    return sum(count_leaves(reply) for reply in live) if live else 1


def count_answered_prompts(message: dict[str, Any]) -> int:
    """Prompter messages answered by an assistant reply, counted once per (prompt, answer) edge."""
    live = [reply for reply in message.get("replies") or [] if not reply.get("deleted")]
    own = sum(1 for r in live if r["role"] == "assistant") if message["role"] == "prompter" else 0
    return own + sum(count_answered_prompts(reply) for reply in live)


def new_eligible_turns(conv: dict[str, Any]) -> int:
    """User turns answered by the next message that no earlier path of the tree already had."""
    messages, shared = conv["messages"], conv["meta"]["extra"]["shared_prefix_messages"]
    return sum(
        1
        for i in range(len(messages) - 1)
        if messages[i]["role"] == "user" and messages[i + 1]["role"] == "assistant" and i + 1 >= shared
    )


def test_oasst_trees_give_one_conversation_per_leaf(shared_data: Path) -> None:
    trees = read_jsonl(shared_data / "oasst-sample" / "en_100_tree.jsonl")
    expected_paths = sum(count_leaves(tree["prompt"]) for tree in trees)
    conversations = []
    for index, tree in enumerate(trees):
        assert detected(tree) == ["oasst"]
        converted = oasst.convert(tree, source="en_100_tree.jsonl", index=index)
        assert len(converted) == count_leaves(tree["prompt"])
        for conv in converted:
            check_conversation(conv)
            assert conv["messages"][0]["content"] == tree["prompt"]["text"]
            assert conv["id"].startswith(tree["message_tree_id"] + ":")
        conversations.extend(converted)
    assert len(conversations) == expected_paths == 626
    expected_pairs = sum(count_answered_prompts(tree["prompt"]) for tree in trees)
    assert sum(new_eligible_turns(c) for c in conversations) == expected_pairs
    assert len({c["id"] for c in conversations}) == len(conversations)
    assert {c["meta"]["language"] for c in conversations} == {"en"}
    assert sum(c["meta"]["extra"]["synthetic"] for c in conversations) > 0


def test_every_hh_row_converts(shared_data: Path) -> None:
    rows = read_jsonl(shared_data / "anthropic-hh-rlhf-harmless" / "harmless-base-test.jsonl")
    marker = re.compile(r"\n\n(?:Human|Assistant):")
    ids = set()
    for index, row in enumerate(rows):
        assert detected(row) == ["hh"]
        (conv,) = hh.convert(row, source="harmless-base-test.jsonl", index=index)
        check_conversation(conv)
        markers = len(marker.findall(row["chosen"]))
        dropped = 1 if conv["meta"]["extra"].get("empty_final_response") else 0
        assert len(conv["messages"]) == markers - dropped
        assert conv["messages"][0]["role"] == "user"
        ids.add(conv["id"])
    assert len(rows) == 2312 and len(ids) == len(rows)


def test_tau_trajectories_keep_tool_calls_and_outputs_paired(shared_data: Path) -> None:
    trajectories = json.loads((shared_data / "tau-bench" / "gpt-4o-airline.json").read_text(encoding="utf-8"))
    raw_calls = sum(len(m.get("tool_calls") or []) for t in trajectories for m in t["traj"])
    calls = outputs = 0
    for index, trajectory in enumerate(trajectories):
        assert detected(trajectory) == ["tau"]
        (conv,) = tau.convert(trajectory, source="gpt-4o-airline.json", index=index)
        check_conversation(conv)
        record = Conversation.model_validate(conv)
        assert record.meta.product_context == "customer_support"
        assert record.meta.extra["reward"] == trajectory["reward"]
        tool_names = {spec.name for spec in record.tools}
        latest_calls: dict[str, str] = {}
        for message in record.messages:
            if message.role == "assistant" and message.tool_calls:
                latest_calls = {call.id: call.name for call in message.tool_calls}
                calls += len(message.tool_calls)
                assert {call.name for call in message.tool_calls} <= tool_names
            elif message.role == "tool":
                outputs += 1
                assert latest_calls.get(message.tool_call_id or "") == message.name
    assert len(trajectories) == 200
    assert calls == outputs == raw_calls > 0


def test_other_shared_files_are_not_claimed_by_these_formats(shared_data: Path) -> None:
    mine = {"wildchat", "lmsys", "sharegpt", "oasst", "hh", "tau"}
    for relative in (
        "arena-hard-auto/arena-hard-v0.1_answer_gpt-4-0314.jsonl",
        "arena-hard-auto/arena-hard-v0.1_question.jsonl",
        "openai-moderation/samples-dev.jsonl",
        "tau-bench/MockAirlineDomainEnv-few_shot.jsonl",
        "oasst-sample/en_100_text.jsonl",
    ):
        for row in read_jsonl(shared_data / relative)[:50]:
            if isinstance(row, dict):
                assert not mine & set(detected(row)), relative
