"""Reader core: containers, compression, line numbers, quarantine and counts, detection."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deploysim.records import Conversation
from deploysim.sources.config import SourceConfig
from deploysim.sources.formats import FORMATS, openai
from deploysim.sources.reader import SourceReader, iter_conversations


def chat(i: int, turns: int = 1, **extra: Any) -> dict[str, Any]:
    msgs: list[dict[str, Any]] = []
    for t in range(turns):
        msgs += [{"role": "user", "content": f"question {i}.{t}"},
                 {"role": "assistant", "content": f"answer {i}.{t}"}]
    return {"id": f"c{i}", "messages": msgs, **extra}


def write_jsonl(path: Path, rows: list[Any], *, gz: bool = False) -> Path:
    data = b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in rows)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def read_all(path: Path, tmp_path: Path, **cfg: Any) -> tuple[SourceReader, list[Any]]:
    reader = SourceReader(SourceConfig(path=path, **cfg), quarantine_dir=tmp_path / "q")
    rows = list(reader)
    st = reader.stats
    assert st.read == st.accepted + st.quarantined
    return reader, rows


def quarantined(reader: SourceReader) -> list[tuple[int, str]]:
    path = reader.stats.quarantine_path
    if path is None:
        return []
    return [(r["line"], r["reason"]) for r in map(json.loads, Path(path).read_text().splitlines())]


BAD_ROWS: list[tuple[bytes, str]] = [
    (b'{"messages": [{"role": "user", "content": "x"}', "invalid JSON"),
    (b'{"messages": [{"role": "user", "content": "caf\xe9"}]}', "invalid UTF-8"),
    (b'["not", "an", "object"]', "row is a JSON array"),
    (orjson.dumps({"messages": [{"role": "robot", "content": "hi"}]}), "unknown role 'robot'"),
    (orjson.dumps({"messages": []}), "empty conversation"),
    (orjson.dumps({"messages": [{"role": "user", "content": ""}]}), "empty conversation"),
    (orjson.dumps({"messages": [{"role": "user", "content": 5}]}), "messages[0].content: expected a string"),
    (orjson.dumps({"messages": "hello"}), "messages: expected a list"),
    (orjson.dumps({"messages": [{"role": "user", "content": "x"}], "metadata": {"language": 3}}),
     "meta.language: expected a string"),
]


@pytest.mark.parametrize("gz", [False, True])
def test_every_unusable_row_is_quarantined_with_line_and_reason(tmp_path: Path, gz: bool) -> None:
    rows: list[Any] = [chat(0)] + [bad for bad, _ in BAD_ROWS] + [chat(1, turns=2)]
    reader, scanned = read_all(write_jsonl(tmp_path / "log.jsonl", rows, gz=gz), tmp_path)
    st = reader.stats
    assert (st.read, st.accepted, st.quarantined) == (len(rows), 2, len(BAD_ROWS))
    assert st.compression == ("gzip" if gz else "none") and st.format == "openai"
    assert [line for line, *_ in scanned] == [1, len(rows)]
    got = quarantined(reader)
    assert [line for line, _ in got] == list(range(2, len(BAD_ROWS) + 2))
    for (_, reason), (_, expected) in zip(got, BAD_ROWS, strict=True):
        assert expected in reason
    assert st.conversations == 2 and st.eligible_turns == 3


def test_blank_lines_crlf_and_bom_are_not_rows(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + orjson.dumps(chat(0)) + b"\r\n\r\n   \n" + orjson.dumps(chat(1)))
    reader, scanned = read_all(path, tmp_path)
    assert (reader.stats.read, reader.stats.accepted) == (2, 2)
    assert [line for line, *_ in scanned] == [1, 4]  # physical line numbers


def test_oversized_rows_are_skipped_without_holding_them(tmp_path: Path) -> None:
    big = chat(1)
    big["messages"][0]["content"] = "x" * 5000
    rows = [chat(0), big, chat(2)]
    reader, _ = read_all(write_jsonl(tmp_path / "log.jsonl", rows), tmp_path, max_row_bytes=1000)
    assert (reader.stats.accepted, reader.stats.quarantined) == (2, 1)
    assert quarantined(reader)[0][0] == 2 and "oversized" in quarantined(reader)[0][1]


def test_oversized_line_spanning_read_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deploysim.sources import containers

    monkeypatch.setattr(containers, "CHUNK_BYTES", 64)
    big = chat(1)
    big["messages"][0]["content"] = "y" * 1000
    rows = [chat(0), big, chat(2), big]
    reader, scanned = read_all(write_jsonl(tmp_path / "log.jsonl", rows), tmp_path, max_row_bytes=300)
    assert [line for line, *_ in scanned] == [1, 3]
    assert [line for line, _ in quarantined(reader)] == [2, 4]


def test_json_array_and_pretty_printed_object(tmp_path: Path) -> None:
    arr = tmp_path / "log.json"
    arr.write_text(json.dumps([chat(0), chat(1), "oops", chat(2)], indent=2))
    reader, scanned = read_all(arr, tmp_path)
    assert reader.stats.container == "json"
    assert [line for line, *_ in scanned] == [1, 2, 4]
    assert quarantined(reader) == [(3, "row is a JSON string, expected an object")]
    one = tmp_path / "one.json"
    one.write_text(json.dumps(chat(7), indent=2))
    reader, scanned = read_all(one, tmp_path)
    assert (reader.stats.container, reader.stats.accepted) == ("json", 1)


def test_a_broken_json_array_element_is_quarantined_and_the_rows_after_it_are_read(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    broken = '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": 1 ] }'
    path.write_text("[" + json.dumps(chat(0)) + ", " + broken + ", " + json.dumps(chat(1)) + ", "
                    + json.dumps(chat(2)) + "]")
    reader, _ = read_all(path, tmp_path)
    assert (reader.stats.read, reader.stats.accepted, reader.stats.quarantined) == (4, 3, 1)
    assert "invalid JSON" in quarantined(reader)[0][1]  # the message object inside is not taken for a row


def test_a_json_array_that_cannot_be_resynchronised_quarantines_the_rest_once(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    path.write_text("[" + json.dumps(chat(0)) + ", {\"messages\": [}")
    reader, _ = read_all(path, tmp_path)
    assert (reader.stats.read, reader.stats.accepted, reader.stats.quarantined) == (2, 1, 1)
    assert "cannot be split into rows" in quarantined(reader)[0][1]


def test_parquet_rows_with_nested_messages(tmp_path: Path) -> None:
    rows = [chat(0, turns=2), chat(1)]
    path = tmp_path / "log.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    reader, _ = read_all(path, tmp_path)
    assert (reader.stats.container, reader.stats.accepted, reader.stats.eligible_turns) == ("parquet", 2, 3)


def test_gzip_json_array_detected_by_magic_bytes(tmp_path: Path) -> None:
    path = tmp_path / "log.data"
    path.write_bytes(gzip.compress(json.dumps([chat(0), chat(1)]).encode()))
    reader, _ = read_all(path, tmp_path)
    assert (reader.stats.compression, reader.stats.container, reader.stats.accepted) == ("gzip", "json", 2)


def test_truncated_gzip_is_reported_not_raised(tmp_path: Path) -> None:
    data = gzip.compress(b"".join(orjson.dumps(chat(i)) + b"\n" for i in range(2000)))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    reader, scanned = read_all(path, tmp_path)
    assert reader.stats.quarantined >= 1 and len(scanned) == reader.stats.accepted > 0
    assert any("unreadable" in reason for _, reason in quarantined(reader))


def test_detection_votes_and_unknown_files_fail_clearly(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "x.jsonl", [{"foo": 1}, {"bar": 2}])
    with pytest.raises(ValueError, match="no known log format"):
        list(SourceReader(SourceConfig(path=path)))
    with pytest.raises(ValueError, match="not available"):
        list(SourceReader(SourceConfig(path=write_jsonl(tmp_path / "y.jsonl", [chat(0)]), format="openai"),
                          formats=()))
    with pytest.raises(FileNotFoundError):
        list(SourceReader(SourceConfig(path=tmp_path / "missing.jsonl")))


def test_forced_format_skips_detection_and_only_strings_file_is_all_quarantined(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", ["just a prompt", "another"])
    reader, _ = read_all(path, tmp_path)
    assert (reader.stats.format, reader.stats.quarantined) == ("unknown", 2)
    path = write_jsonl(tmp_path / "o.jsonl", [chat(0)])
    reader, _ = read_all(path, tmp_path, format="openai")
    assert reader.stats.format == "openai"


def test_defaults_fill_missing_metadata_only(tmp_path: Path) -> None:
    rows = [chat(0, model="gpt-x"), chat(1)]
    path = write_jsonl(tmp_path / "log.jsonl", rows)
    stream = iter_conversations(SourceConfig(path=path, name="prod", deployed_model="fallback",
                                             product_context="general_chat"))
    convs = list(stream)
    assert [c.meta.deployed_model for c in convs] == ["gpt-x", "fallback"]
    assert {c.meta.source for c in convs} == {"prod"} and convs[0].meta.product_context == "general_chat"
    assert stream.stats.accepted == 2


def test_quarantine_file_is_rewritten_on_each_read(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "log.jsonl", [b"{bad", chat(0)])
    reader, _ = read_all(path, tmp_path)
    qfile = Path(reader.stats.quarantine_path or "")
    assert len(qfile.read_text().splitlines()) == 1
    write_jsonl(path, [chat(0)])
    reader, _ = read_all(path, tmp_path)
    assert reader.stats.quarantine_path is None and not qfile.exists()


# -- the OpenAI chat format --------------------------------------------------------------
def test_openai_tool_calls_parts_refusals_and_metadata() -> None:
    row = {
        "id": 42, "created": 1767225600, "model": "gpt-prod", "user_tier": "pro",
        "metadata": {"product_context": "coding_assistant", "language": "en", "team": "a"},
        "tools": [{"type": "function", "function": {"name": "run", "parameters": {"type": "object"}}}],
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": [{"type": "text", "text": "look"},
                                         {"type": "image_url", "image_url": {}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "run", "arguments": {"x": 1}}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
            {"role": "assistant", "content": None, "refusal": "I can't help with that."},
            {"role": "user", "content": "again"},
            {"role": "assistant", "content": None, "function_call": {"name": "run", "arguments": "{}"}},
            {"role": "function", "name": "run", "content": "done"},
        ],
    }
    (conv,) = openai.convert(row, source="s", index=3)
    record = Conversation.model_validate(conv)
    assert record.id == "42" and record.tools[0].name == "run"
    assert record.messages[1].content == "look" and conv["meta"]["extra"]["non_text_messages"] == [1]
    assert record.messages[2].tool_calls[0].arguments == '{"x":1}'
    assert record.messages[4].content == "I can't help with that."
    assert record.messages[6].tool_calls[0].name == "run" and record.messages[7].role == "tool"
    assert record.messages[7].tool_call_id == record.messages[6].tool_calls[0].id
    assert record.meta.deployed_model == "gpt-prod" and record.meta.timestamp == "2026-01-01T00:00:00+00:00"
    assert record.meta.extra == {"team": "a", "user_tier": "pro", "non_text_messages": [1]}
    assert openai.scan(row) is None  # not plain: the fast path defers to convert


def test_openai_rows_without_id_get_stable_ids_and_bad_parts_raise() -> None:
    (conv,) = openai.convert(chat(0) | {"id": None}, source="log.jsonl", index=9)
    assert conv["id"] == "log.jsonl:9"
    with pytest.raises(openai.RowError, match=r"messages\[0\].content"):
        openai.convert({"messages": [{"role": "user", "content": [3]}]}, source="s", index=1)
    with pytest.raises(openai.RowError, match="metadata"):
        openai.convert(chat(0) | {"metadata": "x"}, source="s", index=1)


def test_formats_tuple_ends_with_the_openai_catch_all() -> None:
    assert FORMATS[-1] is openai and len({m.NAME for m in FORMATS}) == len(FORMATS)


# -- real public data (skipped when ../shared/data is absent) -----------------------------
@pytest.mark.parametrize(("rel", "fmt"), [
    ("arena-hard-auto/arena-hard-v0.1_answer_gpt-4-0314.jsonl", "openai"),
    ("tau-bench/gpt-4o-airline.json", "tau"),
    ("oasst-sample/en_100_tree.jsonl", "oasst"),
    ("anthropic-hh-rlhf-harmless/harmless-base-test.jsonl", "hh"),
])
def test_shared_data_reads_and_reconciles(shared_data: Path, tmp_path: Path, rel: str, fmt: str) -> None:
    reader, scanned = read_all(shared_data / rel, tmp_path)
    st = reader.stats
    assert st.format == fmt and st.accepted > 0 and st.eligible_turns > 0
    line, payload, convs, _ = scanned[0]
    assert convs is not None
    assert reader.convert_payload(payload, line) == convs
    Conversation.model_validate(convs[0])


def test_shared_prompt_list_is_quarantined_not_dropped(shared_data: Path, tmp_path: Path) -> None:
    reader, scanned = read_all(shared_data / "oasst-sample" / "en_100_text.jsonl", tmp_path)
    assert scanned == [] and reader.stats.quarantined == reader.stats.read > 0


def test_deeply_nested_rows_are_quarantined_not_a_crash(tmp_path: Path) -> None:
    deep = "[" * 50_000 + "]" * 50_000
    array = tmp_path / "deep.json"
    array.write_text('[{"messages": ' + deep + "}, " + json.dumps(chat(1)) + "]")
    reader, _ = read_all(array, tmp_path)
    assert (reader.stats.read, reader.stats.accepted, reader.stats.quarantined) == (2, 1, 1)
    assert "nested too deeply" in quarantined(reader)[0][1]
    lines = tmp_path / "deep.jsonl"
    lines.write_text('{"messages": ' + deep + "}\n" + json.dumps(chat(2)) + "\n")
    reader, _ = read_all(lines, tmp_path)
    assert (reader.stats.read, reader.stats.accepted, reader.stats.quarantined) == (2, 1, 1)
