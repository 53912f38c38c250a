"""Dataset formats read end to end through the reader core with format auto-detection.

Fixture files (JSONL, gzip, a JSON array, Parquet) hold good rows plus one bad row each, and the
real shared files are read whole; in every case read = accepted + quarantined.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deploysim.records import Conversation
from deploysim.sources.config import SourceConfig
from deploysim.sources.reader import iter_conversations
from tests.format_rows import (
    HH_RED_TEAM_ROW,
    HH_ROW,
    LMSYS_ROW,
    OASST_ROW,
    SHAREGPT_ROW,
    SHAREGPT_TOOL_ROW,
    TAU_ROW,
    WILDCHAT_ROW,
    WILDCHAT_V1_ROW,
    row,
)


def read_all(path: Path, tmp_path: Path, **config: Any) -> tuple[list[Conversation], Any]:
    stream = iter_conversations(SourceConfig(path=path, **config), quarantine_dir=tmp_path / "quarantine")
    conversations = list(stream)
    stats = stream.stats
    assert stats.read == stats.accepted + stats.quarantined
    return conversations, stats


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def quarantined_reasons(stats: Any) -> list[tuple[int, str]]:
    return [(q.line, q.reason) for q in stats.examples]


def test_wildchat_jsonl_gz(tmp_path: Path) -> None:
    bad = row(WILDCHAT_ROW, conversation=[{"role": "narrator", "content": "x"}])
    path = write_jsonl(tmp_path / "wildchat.jsonl.gz", [WILDCHAT_ROW, WILDCHAT_V1_ROW, bad])
    conversations, stats = read_all(path, tmp_path)
    assert (stats.format, stats.read, stats.accepted, stats.quarantined) == ("wildchat", 3, 2, 1)
    assert quarantined_reasons(stats)[0][0] == 3
    assert quarantined_reasons(stats)[0][1].startswith("conversation[0].role: unknown role 'narrator'")
    assert [c.meta.source for c in conversations] == ["wildchat.jsonl.gz"] * 2
    assert stats.eligible_turns == 3
    quarantine_lines = Path(stats.quarantine_path).read_text(encoding="utf-8").splitlines()
    assert len(quarantine_lines) == 1 and json.loads(quarantine_lines[0])["line"] == 3


def test_wildchat_parquet_with_datetime_timestamps(tmp_path: Path) -> None:
    parquet_row = row(WILDCHAT_ROW, timestamp=datetime(2023, 8, 14, 9, 21, 37, tzinfo=UTC))
    second = row(parquet_row, conversation_hash="0" * 32)
    pq.write_table(pa.Table.from_pylist([parquet_row, second]), tmp_path / "wildchat.parquet")
    conversations, stats = read_all(tmp_path / "wildchat.parquet", tmp_path)
    assert (stats.format, stats.accepted, stats.quarantined) == ("wildchat", 2, 0)
    assert conversations[0].meta.timestamp is not None
    assert conversations[0].meta.timestamp.startswith("2023-08-14T09:21:37")
    assert [c.id for c in conversations] == [
        f"{WILDCHAT_ROW['conversation_hash']}:1432001",
        f"{'0' * 32}:1432001",
    ]


def test_lmsys_and_source_defaults(tmp_path: Path) -> None:
    other = row(LMSYS_ROW, conversation_id="a" * 32, model=None)
    bad = row(LMSYS_ROW, conversation_id="")
    path = write_jsonl(tmp_path / "lmsys.jsonl", [LMSYS_ROW, other, bad])
    conversations, stats = read_all(path, tmp_path, deployed_model="fallback-model")
    assert (stats.format, stats.accepted, stats.quarantined) == ("lmsys", 2, 1)
    assert [c.meta.deployed_model for c in conversations] == ["vicuna-13b", "fallback-model"]


def test_sharegpt_json_array(tmp_path: Path) -> None:
    bad = {
        "id": "bad",
        "conversations": [{"from": "human", "value": "hi"}, {"from": "narrator", "value": "x"}],
    }
    path = tmp_path / "sharegpt.json"
    path.write_text(json.dumps([SHAREGPT_ROW, SHAREGPT_TOOL_ROW, bad]), encoding="utf-8")
    conversations, stats = read_all(path, tmp_path)
    assert (stats.format, stats.read, stats.accepted, stats.quarantined) == ("sharegpt", 3, 2, 1)
    assert quarantined_reasons(stats)[0][1].startswith("conversations[1].from: unknown role 'narrator'")
    tool_message = conversations[1].messages[3]
    assert (tool_message.role, tool_message.tool_call_id) == ("tool", "call_1")


def test_oasst_hh_and_tau_fixture_files(tmp_path: Path) -> None:
    deleted_root = row(OASST_ROW, message_tree_id="tree-0002")
    deleted_root["prompt"]["deleted"] = True
    conversations, stats = read_all(
        write_jsonl(tmp_path / "trees.jsonl", [OASST_ROW, deleted_root]), tmp_path
    )
    assert (stats.format, stats.accepted, stats.quarantined, stats.conversations) == ("oasst", 1, 1, 2)

    hh_rows = [HH_ROW, HH_RED_TEAM_ROW, {"chosen": "Human: hi\n\nAssistant:\n\nHuman: ?\n\nAssistant: ok"}]
    conversations, stats = read_all(write_jsonl(tmp_path / "hh.jsonl", hh_rows), tmp_path)
    assert (stats.format, stats.accepted, stats.quarantined) == ("hh", 2, 1)
    assert quarantined_reasons(stats) == [(3, "chosen: turn 2 (Assistant) is empty")]

    orphan = row(TAU_ROW, trial=2)
    orphan["traj"][3]["tool_call_id"] = "call_zz"
    path = tmp_path / "tau.json"
    path.write_text(json.dumps([TAU_ROW, orphan]), encoding="utf-8")
    conversations, stats = read_all(path, tmp_path)
    assert (stats.format, stats.accepted, stats.quarantined) == ("tau", 1, 1)
    assert conversations[0].meta.product_context == "customer_support"


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("relative", "fmt", "rows", "conversations"),
    [
        ("oasst-sample/en_100_tree.jsonl", "oasst", 100, 626),
        ("anthropic-hh-rlhf-harmless/harmless-base-test.jsonl", "hh", 2312, 2312),
        ("tau-bench/gpt-4o-airline.json", "tau", 200, 200),
    ],
)
def test_shared_files_through_the_reader(
    shared_data: Path, tmp_path: Path, relative: str, fmt: str, rows: int, conversations: int
) -> None:
    converted, stats = read_all(shared_data / relative, tmp_path)
    assert stats.format == fmt
    assert (stats.read, stats.accepted, stats.quarantined) == (rows, rows, 0)
    assert stats.conversations == len(converted) == conversations
    assert stats.eligible_turns > 0
    assert len({c.id for c in converted}) == conversations
