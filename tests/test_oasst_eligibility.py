"""OpenAssistant trees: each prompt->answer pair is eligible once, however many leaves share it."""

from __future__ import annotations

from pathlib import Path

import orjson

from deploysim.sources.config import SourceConfig
from deploysim.sources.reader import iter_conversations


def _distinct_pairs(node: dict, seen: set[tuple[str, str]]) -> None:
    for reply in node.get("replies") or []:
        if node.get("role") == "prompter" and reply.get("role") == "assistant" and not reply.get("deleted") \
                and not node.get("deleted"):
            seen.add((node["message_id"], reply["message_id"]))
        if not reply.get("deleted"):
            _distinct_pairs(reply, seen)


def test_shared_tree_turns_are_counted_once(shared_data: Path) -> None:
    path = shared_data / "oasst-sample" / "en_100_tree.jsonl"
    pairs: set[tuple[str, str]] = set()
    for line in path.read_bytes().splitlines():
        tree = orjson.loads(line)
        if not tree["prompt"].get("deleted"):
            _distinct_pairs(tree["prompt"], pairs)
    stream = iter_conversations(SourceConfig(path=path))
    convs = list(stream)
    assert len(convs) > len(pairs) / 2  # one conversation per leaf path
    assert stream.stats.eligible_turns == len(pairs)
