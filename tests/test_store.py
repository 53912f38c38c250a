"""The run store: idempotent writes, resume work lists, paired labels, export."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploysim.records import (
    Completion,
    Continuation,
    Judgment,
    Message,
    Prefix,
    PrefixContext,
)
from deploysim.report.export import export_run
from deploysim.store import RunStore


def make_prefix(i: int, context: str = "general_chat") -> Prefix:
    msgs = (Message(role="user", content=f"question {i}"),)
    return Prefix(
        id=Prefix.make_id(f"c{i}", 0, msgs),
        conversation_id=f"c{i}",
        turn_index=0,
        messages=msgs,
        context=PrefixContext(product_context=context, language="en"),
        continuation=Continuation(response=Message(role="assistant", content=f"answer {i}")),
    )


def make_completion(p: Prefix, arm: str = "x_on_y", sample: int = 0, status: str = "ok") -> Completion:
    return Completion(
        id=Completion.make_id(p.id, arm, "spec", sample),
        prefix_id=p.id, arm=arm, model="m", generator_hash="spec", sample_index=sample,
        # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        message=Message(role="assistant", content="hi") if status == "ok" else None,
        error=None if status == "ok" else "boom",
    )


def make_judgment(c: Completion, label: bool, category: str = "hate", grader: str = "g1") -> Judgment:
    return Judgment(id=Judgment.make_id(c.id, category, grader), completion_id=c.id, prefix_id=c.prefix_id,
                    arm=c.arm, category=category, grader_id="rules:hate", grader_hash=grader, label=label)


@pytest.fixture()
def store(tmp_path: Path) -> RunStore:
    with RunStore.open(tmp_path / "run") as s:
        yield s


def test_prefixes_are_idempotent_and_ordered(store: RunStore) -> None:
    prefixes = [make_prefix(i) for i in range(10)]
    assert store.put_prefixes(prefixes) == 10
    assert store.put_prefixes(prefixes[:5]) == 0
    assert store.count_prefixes() == 10
    assert [p.id for p in store.iter_prefixes()] == [p.id for p in prefixes]
    assert store.get_prefix(prefixes[3].id) == prefixes[3]


def test_ok_completion_is_never_overwritten_but_error_is(store: RunStore) -> None:
    p = make_prefix(1)
    store.put_prefixes([p])
    err = make_completion(p, status="error")
    store.put_completions([err])
    assert store.count_completions(status="error") == 1
    ok = make_completion(p)
    store.put_completions([ok])
    assert store.count_completions(status="ok") == 1
    assert store.count_completions() == 1
    store.put_completions([err])  # a late error must not clobber the ok row
    got = store.get_completion(ok.id)
    assert got is not None and got.status == "ok"


def test_pending_work_list_resumes(store: RunStore) -> None:
    prefixes = [make_prefix(i) for i in range(7)]
    store.put_prefixes(prefixes)
    store.put_completions([make_completion(prefixes[0], sample=0), make_completion(prefixes[2], sample=1),
                           make_completion(prefixes[3], sample=0, status="error")])
    pending = [(p.id, i) for p, i in store.iter_pending_prefixes("x_on_y", "spec", samples=2,
                                                                 pool="production", batch=3)]
    expected = [(p.id, i) for p in prefixes for i in range(2)]
    expected.remove((prefixes[0].id, 0))
    expected.remove((prefixes[2].id, 1))
    assert pending == expected
    # another arm is independent
    assert len(list(store.iter_pending_prefixes("y_on_y", "spec", samples=1, pool="production"))) == 7


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 2)), max_size=40))
def test_pending_is_complement_of_done(tmp_path_factory: pytest.TempPathFactory,
                                       done: list[tuple[int, int]]) -> None:
    with RunStore.open(tmp_path_factory.mktemp("r")) as s:
        prefixes = [make_prefix(i) for i in range(31)]
        s.put_prefixes(prefixes)
        s.put_completions([make_completion(prefixes[i], sample=j) for i, j in done])
        pending = {(p.id, i) for p, i in s.iter_pending_prefixes("x_on_y", "spec", samples=3,
                                                                 pool="production", batch=4)}
        done_keys = {(prefixes[i].id, j) for i, j in done}
        assert pending | done_keys == {(p.id, j) for p in prefixes for j in range(3)}
        assert not pending & done_keys


def test_judgment_counts_and_pairs(store: RunStore) -> None:
    prefixes = [make_prefix(i) for i in range(4)]
    store.put_prefixes(prefixes)
    xs = [make_completion(p, "x_on_y") for p in prefixes]
    ys = [make_completion(p, "y_on_y") for p in prefixes]
    store.put_completions(xs + ys)
    labels_x, labels_y = [True, True, False, False], [True, False, False, True]
    store.put_judgments([make_judgment(c, lab) for c, lab in zip(xs, labels_x, strict=True)])
    store.put_judgments([make_judgment(c, lab) for c, lab in zip(ys, labels_y, strict=True)])
    counts = {(c.category, c.arm, c.grader_hash): (c.ok, c.positive,
                                                   c.errors) for c in store.judgment_counts()}
    assert counts[("hate", "x_on_y", "g1")] == (4, 2, 0)
    assert counts[("hate", "y_on_y", "g1")] == (4, 2, 0)
    pairs = store.paired_labels("hate", "g1", "x_on_y", "y_on_y")
    assert sorted((a, b) for _, a, b in pairs) == sorted([(True, True), (True, False), (False, False),
                                                         (False, True)])
    assert store.judged_completion_ids("hate", "g1") == {c.id for c in xs + ys}


def test_meta_roundtrip_and_reopen(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "r") as s:
        s.set_meta("config", {"a": 1})
        s.put_prefixes([make_prefix(1)])
    with RunStore.open(tmp_path / "r", create=False) as s:
        assert s.get_meta("config") == {"a": 1}
        assert s.count_prefixes() == 1
        assert s.get_meta("schema_version") == 2
    with pytest.raises(FileNotFoundError):
        RunStore.open(tmp_path / "missing", create=False)


def test_export_parquet_and_jsonl(store: RunStore, tmp_path: Path) -> None:
    prefixes = [make_prefix(i) for i in range(3)]
    store.put_prefixes(prefixes)
    comps = [make_completion(p) for p in prefixes]
    store.put_completions(comps)
    store.put_judgments([make_judgment(comps[0], True)])
    result = export_run(store, tmp_path / "out")
    assert result.rows["prefixes"] == 3 and result.rows["judgments"] == 1
    table = pq.read_table(tmp_path / "out" / "prefixes.parquet")
    assert table.num_rows == 3
    assert json.loads(table.column("messages")[0].as_py())[0]["role"] == "user"
    lines = (tmp_path / "out" / "completions.jsonl").read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["arm"] == "x_on_y"
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["rows"]["completions"] == 3
    assert manifest["privacy"]["prefixes_by_deidentification_status"] == {"raw": 3}
    with pytest.raises(ValueError, match="unknown export format"):
        export_run(store, tmp_path / "o2", formats=("csv",))


def test_pools_keep_challenge_and_release_prefixes_out_of_the_simulation(store: RunStore) -> None:
    prod = [make_prefix(i) for i in range(3)]
    challenge = [make_prefix(10 + i).model_copy(update={"pool": "challenge", "id": f"ch{i}"})
                 for i in range(2)]
    store.put_prefixes(prod + challenge)
    assert store.count_prefixes(pool="production") == 3 and store.count_prefixes(pool="challenge") == 2
    assert {p.id for p, _ in store.iter_pending_prefixes("x_on_y", "spec", 1,
                                                         pool="production")} == {p.id for p in prod}
    assert {p.id for p, _ in store.iter_pending_prefixes("challenge", "spec", 1, pool="challenge")} == {"ch0",
                                                                                                        "ch1"}
    assert list(store.iter_pending_prefixes("x_prod", "spec", 1, pool="release")) == []
    msgs = prod[0].messages
    assert Prefix.make_id("c", 0, msgs, pool="challenge") != Prefix.make_id("c", 0, msgs)


def test_quarantine_keeps_reason_but_not_raw_text(store: RunStore) -> None:
    from deploysim.records import Quarantined

    store.put_quarantined([Quarantined(source="a.jsonl", line=3, reason="bad JSON",
                                       excerpt='{"email": "jane@example.com"')])
    rows = list(store.iter_table_json("quarantine"))
    assert store.quarantine_count() == 1
    assert rows[0]["line"] == 3 and rows[0]["reason"] == "bad JSON"
    assert "jane@example.com" not in str(rows)


def test_a_version_1_database_is_migrated_and_a_newer_one_refused(tmp_path: Path) -> None:
    import sqlite3

    import orjson

    from deploysim.store.migrations import SchemaError

    run = tmp_path / "old"
    run.mkdir()
    conn = sqlite3.connect(run / "run.sqlite")
    conn.executescript(
        "CREATE TABLE run_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);"
        "CREATE TABLE completions (id TEXT PRIMARY KEY, prefix_id TEXT NOT NULL, arm TEXT NOT NULL, "
        "model TEXT NOT NULL, model_spec_hash TEXT NOT NULL, sample_index INTEGER NOT NULL, "
        "status TEXT NOT NULL, "
        "record TEXT NOT NULL, updated_at TEXT NOT NULL);"
        "CREATE INDEX completions_arm ON completions (arm, model_spec_hash, status);")
    old = {"id": "c1", "prefix_id": "p1", "arm": "x_on_y", "model": "m", "model_spec_hash": "h1",
           "sample_index": 0,
           "status": "ok", "created_at": "2026-01-01T00:00:00+00:00"}
    conn.execute("INSERT INTO run_meta VALUES ('schema_version', '1', 'now')")
    conn.execute("INSERT INTO completions VALUES ('c1', 'p1', 'x_on_y', 'm', 'h1', 0, 'ok', ?, 'now')",
                 (orjson.dumps(old).decode(),))
    conn.commit()
    conn.close()
    with RunStore.open(run, create=False) as s:
        (c,) = s.iter_completions(generator_hash="h1")
        assert c.generator_hash == "h1" and s.get_meta("schema_version") == 2
        assert s.get_meta("migrated_from") == 1
        s.set_meta("schema_version", 99)
    with pytest.raises(SchemaError, match="newer than this deploysim understands"):
        RunStore.open(run, create=False)


def test_long_histories_are_shared_between_prefixes_and_read_back_whole(tmp_path: Path) -> None:
    from deploysim.store.prefix_blocks import BLOCK

    convo = tuple(Message(role="user" if i % 2 == 0 else "assistant", content=f"message {i} " + "x" * 50)
                  for i in range(601))
    prefixes = [Prefix(id=Prefix.make_id("long", t, convo[:t + 1]), conversation_id="long", turn_index=t,
                       messages=convo[:t + 1]) for t in range(0, 601, 2)]
    with RunStore.open(tmp_path / "r") as s:
        s.put_prefixes(prefixes)
        assert [p.messages for p in s.iter_prefixes()] == [p.messages for p in prefixes]
        assert s.get_prefixes([prefixes[-1].id])[prefixes[-1].id] == prefixes[-1]
        pending = [p for p, _ in s.iter_pending_prefixes("x_on_y", "g", 1, pool="production")]
        assert pending == prefixes
        blocks = s._query("SELECT COUNT(*) FROM message_blocks")[0][0]
        assert blocks == 600 // BLOCK  # each block of the shared history is stored once
        inline = s._query("SELECT MAX(json_array_length(json_extract(record, '$.messages'))) "
                          "FROM prefixes")[0][0]
        assert inline < BLOCK
        exported = {row["id"]: row for row in s.iter_table_json("prefixes")}
        assert len(exported[prefixes[-1].id]["messages"]) == 601
        # rewriting (de-identification) replaces blocks; the old ones are dropped by vacuum
        changed = [p.model_copy(update={"messages": tuple(m.model_copy(update={"content": m.content.upper()})
                                                          for m in p.messages)}) for p in prefixes]
        s.replace_prefixes(changed)
        s.vacuum()
        assert s._query("SELECT COUNT(*) FROM message_blocks")[0][0] == 600 // BLOCK
        assert all("MESSAGE" in p.messages[0].content for p in s.iter_prefixes())
        assert b"message 0 xxx" not in (tmp_path / "r" / "run.sqlite").read_bytes()
