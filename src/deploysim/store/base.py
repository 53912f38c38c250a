"""Plumbing shared by the run store's table groups: the schema, one connection behind a lock,
batched idempotent writes, paged reads. Only the store package speaks SQL."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel

DB_NAME = "run.sqlite"
#: bump with a migration in :mod:`deploysim.store.migrations` whenever a table or a stored
#: record changes shape; a run database is migrated on open and refused if it is newer
SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS run_meta (
    key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    id TEXT PRIMARY KEY, path TEXT NOT NULL, format TEXT NOT NULL, read INTEGER NOT NULL,
    accepted INTEGER NOT NULL, quarantined INTEGER NOT NULL, quarantine_path TEXT,
    record TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, line INTEGER NOT NULL,
    reason TEXT NOT NULL, excerpt TEXT NOT NULL, UNIQUE (source, line, reason));
CREATE TABLE IF NOT EXISTS prefixes (
    id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, turn_index INTEGER NOT NULL,
    product_context TEXT, language TEXT, stratum TEXT, deidentified TEXT NOT NULL,
    seq INTEGER NOT NULL, pool TEXT NOT NULL DEFAULT 'production', record TEXT NOT NULL, blocks TEXT);
CREATE TABLE IF NOT EXISTS message_blocks (id TEXT PRIMARY KEY, messages BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS prefixes_seq ON prefixes (pool, seq);
CREATE TABLE IF NOT EXISTS completions (
    id TEXT PRIMARY KEY, prefix_id TEXT NOT NULL, arm TEXT NOT NULL, model TEXT NOT NULL,
    generator_hash TEXT NOT NULL, sample_index INTEGER NOT NULL, status TEXT NOT NULL,
    record TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS request_settings (
    id TEXT PRIMARY KEY, record TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS graders (
    grader_hash TEXT PRIMARY KEY, category TEXT NOT NULL, grader_id TEXT NOT NULL, kind TEXT NOT NULL,
    identity TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS completions_arm ON completions (arm, generator_hash, status);
CREATE INDEX IF NOT EXISTS completions_prefix ON completions (prefix_id);
CREATE TABLE IF NOT EXISTS judgments (
    id TEXT PRIMARY KEY, completion_id TEXT NOT NULL, prefix_id TEXT NOT NULL, arm TEXT NOT NULL,
    category TEXT NOT NULL, grader_hash TEXT NOT NULL, status TEXT NOT NULL, label INTEGER,
    record TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS judgments_cat ON judgments (category, arm, grader_hash);
CREATE INDEX IF NOT EXISTS judgments_completion ON judgments (completion_id);
CREATE TABLE IF NOT EXISTS estimates (
    id TEXT PRIMARY KEY, category TEXT NOT NULL, arm TEXT NOT NULL, grader_hash TEXT NOT NULL,
    record TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS comparisons (
    id TEXT PRIMARY KEY, category TEXT NOT NULL, arm_a TEXT NOT NULL, arm_b TEXT NOT NULL,
    grader_hash TEXT NOT NULL, record TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS grader_validations (
    id TEXT PRIMARY KEY, grader_hash TEXT NOT NULL, category TEXT NOT NULL, dataset TEXT NOT NULL,
    record TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS response_cache (
    key TEXT PRIMARY KEY, spec_hash TEXT NOT NULL, record TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stage_reports (
    stage TEXT NOT NULL, key TEXT NOT NULL, record TEXT NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY (stage, key));
"""

R = TypeVar("R", bound=BaseModel)


def _dumps(obj: Any) -> str:
    if isinstance(obj, BaseModel):
        return obj.model_dump_json()
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY).decode()


class StoreBase:
    """A connection to a run database; subclasses add the methods of their tables."""

    run_dir: Path

    def __init__(self, run_dir: Path, conn: sqlite3.Connection) -> None:
        self.run_dir = run_dir
        self._conn = conn
        self._lock = threading.RLock()

    def _write(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """One transaction for a batch; returns the number of rows changed."""
        if not rows:
            return 0
        with self._lock:
            before = self._conn.total_changes
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(sql, rows)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            return self._conn.total_changes - before

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _iter_records(self, model: type[R], sql: str, params: Sequence[Any] = (),
                      batch: int = 2000) -> Iterator[R]:
        """Stream records in pages keyed by rowid so memory stays bounded and the lock is
        not held while the caller works."""
        last = -1
        paged = f"SELECT rowid, record FROM ({sql}) WHERE rowid > ? ORDER BY rowid LIMIT ?"
        while True:
            rows = self._query(paged, (*params, last, batch))
            if not rows:
                return
            for _rowid, text in rows:
                yield model.model_validate_json(text)
            last = rows[-1][0]


def _where(**filters: Any) -> tuple[str, tuple[Any, ...]]:
    parts = [f"{k} = ?" for k, v in filters.items() if v is not None]
    params = tuple(v for v in filters.values() if v is not None)
    return (" WHERE " + " AND ".join(parts) if parts else "", params)
