"""The fast ways of building a prefix agree with the obvious one on varied conversations.

The sampler builds prefixes from normalized conversation dicts (``prefix_dict``, validated
once), worker processes send them as JSON, and ``prefix_id`` hashes the dicts instead of
dumping records. Each must give exactly what building the whole :class:`Conversation`
record and cutting it (``make_prefix``, ``Prefix.make_id``) gives: same fields, same fields
set, same id.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from deploysim.records import Conversation, Prefix
from deploysim.sample.prefixes import make_prefix, prefix_dict, prefix_from_dict
from deploysim.sample.spans import BuildSource, PrefixBuilder
from deploysim.sources.config import SourceConfig
from deploysim.sources.formats import openai
from deploysim.sources.validate import check_conversation


def random_conversation(rng: random.Random, i: int) -> dict[str, Any]:
    """A normalized conversation dict with the optional shapes the records allow."""
    msgs: list[dict[str, Any]] = []
    if rng.random() < 0.5:
        msgs.append({"role": rng.choice(["system", "developer"]), "content": f"be brief {i}"})
    for t in range(rng.randint(1, 4)):
        msgs.append({"role": "user", "content": f"question {i}.{t}"})
        if rng.random() < 0.3:
            call: dict[str, Any] = {"id": f"c{i}.{t}", "name": "lookup"}
            if rng.random() < 0.5:
                call["arguments"] = '{"q": 1}'
            msgs.append({"role": "assistant", "content": "", "tool_calls": [call]})
            tool: dict[str, Any] = {"role": "tool", "content": "result", "tool_call_id": call["id"]}
            if rng.random() < 0.3:
                tool["provenance"] = "replayed"
            msgs.append(tool)
            if rng.random() < 0.5:
                msgs.append({"role": "assistant", "content": f"answer {i}.{t}", "name": "bot"})
        else:
            msgs.append({"role": "assistant", "content": f"answer {i}.{t}"})
    conv: dict[str, Any] = {"id": f"conv-{i}", "messages": msgs}
    if rng.random() < 0.6:
        conv["tools"] = [rng.choice([{"name": "lookup"}, {"name": "lookup", "description": "find"},
                                     {"name": "lookup", "parameters": {"type": "object", "b": 1, "a": 2}}])]
    if rng.random() < 0.7:
        meta = {"source": "s", "language": rng.choice(["en", "de"]),
                "deidentified": rng.choice(["raw", "deidentified"])}
        if rng.random() < 0.5:
            meta.update(product_context="coding_assistant", deployed_model="prod-y", timestamp="2026-01-01")
        conv["meta"] = meta
    return conv


_RNG = random.Random(7)
CONVERSATIONS = [random_conversation(_RNG, i) for i in range(300)]


def test_fast_paths_equal_the_record_path_on_varied_conversations() -> None:
    checked = 0
    for conv in CONVERSATIONS:
        record = Conversation.model_validate(conv)
        for turn in check_conversation(conv):
            slow = make_prefix(record, turn, "s1")
            fast = prefix_from_dict(conv, turn, "s1")
            via_json = Prefix.model_validate_json(orjson.dumps(prefix_dict(conv, turn, "s1")))
            assert fast == slow == via_json
            assert fast.model_dump(mode="json") == slow.model_dump(mode="json")
            assert fast.model_dump(exclude_unset=True) == via_json.model_dump(exclude_unset=True)
            assert fast.id == Prefix.make_id(record.id, turn, record.messages[: turn + 1], record.tools)
            checked += 1
    assert checked > 500
    shapes = [m for c in CONVERSATIONS for m in c["messages"]]
    assert any("tool_calls" in m and "arguments" not in m["tool_calls"][0] for m in shapes)
    assert any(m.get("provenance") == "replayed" for m in shapes)
    assert any("meta" not in c for c in CONVERSATIONS) and any("tools" not in c for c in CONVERSATIONS)


def test_tool_outputs_in_the_continuation_are_marked_real() -> None:
    conv = next(c for c in CONVERSATIONS
                if any(m["role"] == "tool" and "provenance" not in m for m in c["messages"]))
    turn = next(t for t in check_conversation(conv) if conv["messages"][t + 1].get("tool_calls"))
    steps = prefix_from_dict(conv, turn).continuation.steps  # type: ignore[union-attr]
    assert steps[0].role == "tool" and steps[0].provenance in ("real", "replayed")


def test_prefix_builder_reads_rows_back_at_their_offsets(tmp_path: Path) -> None:
    rows = [{"id": f"r{i}", "messages": [{"role": "user", "content": f"q{i}"},
                                         {"role": "assistant", "content": f"a{i}"}]} for i in range(5)]
    lines = [orjson.dumps(r) for r in rows]
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    cfg = SourceConfig(path=path, product_context="general_chat")
    builder = PrefixBuilder([BuildSource(cfg, "deploysim.sources.formats.openai", None)])
    offset = len(lines[0]) + 1 + len(lines[1]) + 1
    by_offset = builder.build((0, 3, 0, (offset, len(lines[2])), 0, None, 1))
    by_bytes = builder.build((0, 3, 0, lines[2], 0, None, 1))
    builder.close()
    assert by_offset == by_bytes and by_offset["conversation_id"] == "r2"
    assert by_offset["context"]["product_context"] == "general_chat"  # [[sources]] defaults applied
    path.write_bytes(path.read_bytes() + b"\n")  # the file changes after it was sampled
    stale = PrefixBuilder([BuildSource(cfg, "deploysim.sources.formats.openai", (1, 1))], [openai])
    with pytest.raises(ValueError, match="changed while it was being sampled"):
        stale.build((0, 3, 0, (offset, len(lines[2])), 0, None, 1))
