"""The run database: one SQLite file (WAL) per run directory.

Every table is keyed by a content hash, and every write is an idempotent batched upsert, so a
run killed at any instant resumes where it stopped, redoes nothing that finished and never
duplicates a row. Records are stored as their JSON plus the few columns queries need. This is
the only module that speaks SQL; stages use its methods.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel

from deploysim.records import (
    ARM_POOL,
    Comparison,
    Completion,
    Estimate,
    Judgment,
    Prefix,
    Quarantined,
    utc_now,
)

DB_NAME = "run.sqlite"
SCHEMA_VERSION = 1

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
    seq INTEGER NOT NULL, pool TEXT NOT NULL DEFAULT 'production', record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS prefixes_seq ON prefixes (pool, seq);
CREATE TABLE IF NOT EXISTS completions (
    id TEXT PRIMARY KEY, prefix_id TEXT NOT NULL, arm TEXT NOT NULL, model TEXT NOT NULL,
    model_spec_hash TEXT NOT NULL, sample_index INTEGER NOT NULL, status TEXT NOT NULL,
    record TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS completions_arm ON completions (arm, model_spec_hash, status);
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


class RunStore:
    """A run directory and its database. Thread-safe for one writer (a lock serialises use).

    Open it with :meth:`open`; use as a context manager so the connection closes.
    """

    def __init__(self, run_dir: Path, conn: sqlite3.Connection) -> None:
        self.run_dir = run_dir
        self._conn = conn
        self._lock = threading.RLock()

    # -- lifecycle -------------------------------------------------------------------------
    @classmethod
    def open(cls, run_dir: str | Path, *, create: bool = True) -> RunStore:
        path = Path(run_dir)
        if not path.exists():
            if not create:
                raise FileNotFoundError(f"run directory {path} does not exist")
            path.mkdir(parents=True)
        db = path / DB_NAME
        if not create and not db.exists():
            raise FileNotFoundError(f"{path} is not a run directory (no {DB_NAME})")
        conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False, timeout=60.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=60000")
        conn.executescript(SCHEMA)
        store = cls(path, conn)
        if store.get_meta("schema_version") is None:
            store.set_meta("schema_version", SCHEMA_VERSION)
            store.set_meta("created_at", utc_now())
        return store

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def vacuum(self) -> None:
        """Rebuild the database file so rewritten (e.g. de-identified) text does not survive in
        free pages or the WAL."""
        with self._lock:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.execute("VACUUM")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db_path(self) -> Path:
        return self.run_dir / DB_NAME

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

    # -- run metadata ----------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        self._write("INSERT INTO run_meta (key, value, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                    [(key, _dumps(value), utc_now())])

    def get_meta(self, key: str, default: Any = None) -> Any:
        rows = self._query("SELECT value FROM run_meta WHERE key = ?", (key,))
        return orjson.loads(rows[0][0]) if rows else default

    def all_meta(self) -> dict[str, Any]:
        return {k: orjson.loads(v) for k, v in self._query("SELECT key, value FROM run_meta ORDER BY key")}

    # -- stage reports (per-stage summaries: read/accepted counts, detector config, ...) ---
    def put_stage_report(self, stage: str, key: str, record: Any) -> None:
        self._write("INSERT INTO stage_reports (stage, key, record, updated_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(stage, key) DO UPDATE SET record = excluded.record, "
                    "updated_at = excluded.updated_at", [(stage, key, _dumps(record), utc_now())])

    def stage_names(self) -> list[str]:
        return [r[0] for r in self._query("SELECT DISTINCT stage FROM stage_reports ORDER BY stage")]

    def stage_reports(self, stage: str) -> dict[str, Any]:
        rows = self._query("SELECT key, record FROM stage_reports WHERE stage = ? ORDER BY key", (stage,))
        return {k: orjson.loads(v) for k, v in rows}

    # -- sources and quarantine ------------------------------------------------------------
    def put_source(self, source_id: str, path: str, fmt: str, read: int, accepted: int,
                   quarantined: int, quarantine_path: str | None = None,
                   extra: dict[str, Any] | None = None) -> None:
        record = {"path": path, "format": fmt, "read": read, "accepted": accepted,
                  "quarantined": quarantined, "quarantine_path": quarantine_path, **(extra or {})}
        self._write("INSERT OR REPLACE INTO sources (id, path, format, read, accepted, quarantined, "
                    "quarantine_path, record, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(source_id, path, fmt, read, accepted, quarantined, quarantine_path,
                      _dumps(record), utc_now())])

    def sources(self) -> list[dict[str, Any]]:
        return [orjson.loads(r[0]) | {"id": r[1]}
                for r in self._query("SELECT record, id FROM sources ORDER BY created_at, id")]

    def put_quarantined(self, rows: Iterable[Quarantined]) -> int:
        """Record unusable rows by source, line and reason. The row excerpt is raw log text that
        was never de-identified, so it stays in the local quarantine file and is not stored here
        (the database is what exports and reports are built from)."""
        return self._write("INSERT OR IGNORE INTO quarantine (source, line, reason, excerpt) "
                           "VALUES (?, ?, ?, '')",
                           [(q.source, q.line, q.reason) for q in rows])

    def quarantine_count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM quarantine")[0][0])

    # -- prefixes --------------------------------------------------------------------------
    def put_prefixes(self, prefixes: Iterable[Prefix]) -> int:
        """Insert prefixes (existing ids are left untouched); ``seq`` keeps sampling order."""
        with self._lock:
            start = int(self._query("SELECT COALESCE(MAX(seq), -1) + 1 FROM prefixes")[0][0])
            rows = [(p.id, p.conversation_id, p.turn_index, p.context.product_context,
                     p.context.language, p.stratum, p.context.deidentified, start + i, p.pool,
                     p.model_dump_json()) for i, p in enumerate(prefixes)]
            return self._write("INSERT OR IGNORE INTO prefixes (id, conversation_id, turn_index, "
                               "product_context, language, stratum, deidentified, seq, pool, record) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def replace_prefixes(self, prefixes: Iterable[Prefix]) -> int:
        """Rewrite prefixes in place (same id, same seq): used by de-identification, which
        changes the text but not the identity of a sampled prefix."""
        rows = [(p.context.deidentified, p.model_dump_json(), p.id) for p in prefixes]
        return self._write("UPDATE prefixes SET deidentified = ?, record = ? WHERE id = ?", rows)

    def iter_prefixes(self, *, deidentified: str | None = None, pool: str | None = None) -> Iterator[Prefix]:
        where, params = _where(deidentified=deidentified, pool=pool)
        yield from self._iter_records(Prefix, f"SELECT rowid, record FROM prefixes{where}", params)

    def get_prefix(self, prefix_id: str) -> Prefix | None:
        rows = self._query("SELECT record FROM prefixes WHERE id = ?", (prefix_id,))
        return Prefix.model_validate_json(rows[0][0]) if rows else None

    def deidentified_counts(self) -> dict[str, int]:
        """Number of stored prefixes per de-identification status (raw / deidentified / synthetic)."""
        rows = self._query("SELECT deidentified, COUNT(*) FROM prefixes GROUP BY deidentified")
        return {str(r[0]): int(r[1]) for r in rows}

    def count_prefixes(self, *, pool: str | None = None) -> int:
        where, params = _where(pool=pool)
        return int(self._query(f"SELECT COUNT(*) FROM prefixes{where}", params)[0][0])

    # -- completions -----------------------------------------------------------------------
    def put_completions(self, completions: Iterable[Completion]) -> int:
        """Upsert; an ``ok`` row is final and never overwritten, an ``error`` row may be
        replaced by a later attempt."""
        now = utc_now()
        rows = [(c.id, c.prefix_id, c.arm, c.model, c.model_spec_hash, c.sample_index, c.status,
                 c.model_dump_json(), now) for c in completions]
        return self._write(
            "INSERT INTO completions (id, prefix_id, arm, model, model_spec_hash, sample_index, "
            "status, record, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET status = excluded.status, record = excluded.record, "
            "updated_at = excluded.updated_at WHERE completions.status != 'ok'", rows)

    def iter_completions(self, *, arm: str | None = None, status: str | None = None,
                         model_spec_hash: str | None = None) -> Iterator[Completion]:
        where, params = _where(arm=arm, status=status, model_spec_hash=model_spec_hash)
        yield from self._iter_records(
            Completion, f"SELECT rowid, record FROM completions{where}", params)

    def completions_for_prefix(self, prefix_id: str) -> list[Completion]:
        rows = self._query("SELECT record FROM completions WHERE prefix_id = ? ORDER BY arm, sample_index",
                           (prefix_id,))
        return [Completion.model_validate_json(r[0]) for r in rows]

    def replace_completions(self, completions: Iterable[Completion]) -> int:
        """Rewrite completions in place (same id, any status): used by de-identification of a
        run, which changes their text but not their identity."""
        now = utc_now()
        rows = [(c.status, c.model_dump_json(), now, c.id) for c in completions]
        return self._write("UPDATE completions SET status = ?, record = ?, updated_at = ? WHERE id = ?", rows)

    def get_completion(self, completion_id: str) -> Completion | None:
        rows = self._query("SELECT record FROM completions WHERE id = ?", (completion_id,))
        return Completion.model_validate_json(rows[0][0]) if rows else None

    def count_completions(self, *, arm: str | None = None, status: str | None = None,
                          model_spec_hash: str | None = None) -> int:
        where, params = _where(arm=arm, status=status, model_spec_hash=model_spec_hash)
        return int(self._query(f"SELECT COUNT(*) FROM completions{where}", params)[0][0])

    def completion_keys_done(self, arm: str, model_spec_hash: str) -> set[tuple[str, int]]:
        """(prefix_id, sample_index) pairs that already have an ``ok`` completion."""
        rows = self._query("SELECT prefix_id, sample_index FROM completions WHERE arm = ? AND "
                           "model_spec_hash = ? AND status = 'ok'", (arm, model_spec_hash))
        return {(r[0], int(r[1])) for r in rows}

    def iter_pending_prefixes(self, arm: str, model_spec_hash: str, samples: int,
                              batch: int = 1000) -> Iterator[tuple[Prefix, int]]:
        """Yield (prefix, sample_index) for every pair without an ``ok`` completion, streaming
        in sampling order one page of prefixes at a time: the work list of a (resumed)
        simulation. Memory is bounded by the page size, not the run. Only prefixes of the
        arm's pool (``records.ARM_POOL``) are work for that arm."""
        pool = ARM_POOL.get(arm, "production")
        last = -1
        while True:
            rows = self._query("SELECT seq, id, record FROM prefixes WHERE pool = ? AND seq > ? "
                               "ORDER BY seq LIMIT ?", (pool, last, batch))
            if not rows:
                return
            last = rows[-1][0]
            ids = [r[1] for r in rows]
            marks = ",".join("?" * len(ids))
            done = {(r[0], int(r[1])) for r in self._query(
                f"SELECT prefix_id, sample_index FROM completions WHERE arm = ? AND model_spec_hash = ? "
                f"AND status = 'ok' AND prefix_id IN ({marks})", (arm, model_spec_hash, *ids))}
            for _, pid, text in rows:
                missing = [i for i in range(samples) if (pid, i) not in done]
                if missing:
                    prefix = Prefix.model_validate_json(text)
                    for i in missing:
                        yield prefix, i

    def completion_spend(self, arm: str | None = None, model_spec_hash: str | None = None,
                         ) -> tuple[int, int, float]:
        """(input tokens, output tokens, cost in USD) over stored completions: what earlier
        invocations already spent, so a budget holds across resumes."""
        where, params = _where(arm=arm, model_spec_hash=model_spec_hash)
        row = self._query(
            "SELECT COALESCE(SUM(json_extract(record, '$.usage.input_tokens')), 0), "
            "COALESCE(SUM(json_extract(record, '$.usage.output_tokens')), 0), "
            f"COALESCE(SUM(json_extract(record, '$.cost_usd')), 0.0) FROM completions{where}", params)[0]
        return int(row[0]), int(row[1]), float(row[2])

    # -- response cache (engine) -------------------------------------------------------------
    def get_cached_response(self, key: str) -> str | None:
        """The cached generation JSON for a request key, or None."""
        rows = self._query("SELECT record FROM response_cache WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def get_cached_responses(self, keys: Sequence[str]) -> dict[str, str]:
        """Cached generation JSON for many keys in one query (missing keys are absent)."""
        out: dict[str, str] = {}
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            marks = ",".join("?" * len(part))
            out.update(self._query(f"SELECT key, record FROM response_cache WHERE key IN ({marks})", part))
        return out

    def put_cached_responses(self, rows: Iterable[tuple[str, str, str]]) -> int:
        """Insert (key, spec_hash, generation JSON) rows; an existing key is kept."""
        now = utc_now()
        return self._write("INSERT OR IGNORE INTO response_cache (key, spec_hash, record, created_at) "
                           "VALUES (?, ?, ?, ?)", [(k, h, r, now) for k, h, r in rows])

    def count_cached_responses(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM response_cache")[0][0])

    # -- judgments -------------------------------------------------------------------------
    def put_judgments(self, judgments: Iterable[Judgment]) -> int:
        now = utc_now()
        rows = [(j.id, j.completion_id, j.prefix_id, j.arm, j.category, j.grader_hash, j.status,
                 None if j.label is None else int(j.label), j.model_dump_json(), now)
                for j in judgments]
        return self._write(
            "INSERT INTO judgments (id, completion_id, prefix_id, arm, category, grader_hash, "
            "status, label, record, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET status = excluded.status, label = excluded.label, "
            "record = excluded.record, updated_at = excluded.updated_at "
            "WHERE judgments.status != 'ok'", rows)

    def iter_judgments(self, *, category: str | None = None, arm: str | None = None,
                       grader_hash: str | None = None, status: str | None = None) -> Iterator[Judgment]:
        where, params = _where(category=category, arm=arm, grader_hash=grader_hash, status=status)
        yield from self._iter_records(Judgment, f"SELECT rowid, record FROM judgments{where}", params)

    def judged_completion_ids(self, category: str, grader_hash: str) -> set[str]:
        rows = self._query("SELECT completion_id FROM judgments WHERE category = ? AND "
                           "grader_hash = ? AND status = 'ok'", (category, grader_hash))
        return {r[0] for r in rows}

    def judgment_status_for(self, completion_ids: Sequence[str]) -> dict[tuple[str, str, str], str]:
        """(completion_id, category, grader_hash) -> status for the judgments of these completions
        (one page of the grade stage's resume check; pass at most a few thousand ids)."""
        if not completion_ids:
            return {}
        marks = ",".join("?" * len(completion_ids))
        rows = self._query(f"SELECT completion_id, category, grader_hash, status FROM judgments "
                           f"WHERE completion_id IN ({marks})", tuple(completion_ids))
        return {(r[0], r[1], r[2]): r[3] for r in rows}

    def get_prefixes(self, prefix_ids: Sequence[str]) -> dict[str, Prefix]:
        """Prefixes by id (missing ids are absent from the result)."""
        ids = list(dict.fromkeys(prefix_ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._query(f"SELECT record FROM prefixes WHERE id IN ({marks})", tuple(ids))
        return {p.id: p for p in (Prefix.model_validate_json(r[0]) for r in rows)}

    def judgment_counts(self) -> list[tuple[str, str, str, int, int, int]]:
        """(category, arm, grader_hash, n_ok, k_positive, n_error) for every group."""
        rows = self._query(
            "SELECT category, arm, grader_hash, SUM(status = 'ok'), "
            "SUM(status = 'ok' AND label = 1), SUM(status != 'ok') FROM judgments "
            "GROUP BY category, arm, grader_hash ORDER BY category, arm, grader_hash")
        return [(r[0], r[1], r[2], int(r[3]), int(r[4]), int(r[5])) for r in rows]

    def paired_labels(self, category: str, grader_hash: str, arm_a: str,
                      arm_b: str) -> list[tuple[str, bool, bool]]:
        """(prefix_id, label_a, label_b) on prefixes graded ok in both arms (sample 0), for the
        paired McNemar test."""
        rows = self._query(
            "SELECT a.prefix_id, a.label, b.label FROM judgments a JOIN judgments b "
            "ON a.prefix_id = b.prefix_id AND a.category = b.category AND a.grader_hash = b.grader_hash "
            "JOIN completions ca ON ca.id = a.completion_id JOIN completions cb ON cb.id = b.completion_id "
            "WHERE a.category = ? AND a.grader_hash = ? AND a.arm = ? AND b.arm = ? "
            "AND a.status = 'ok' AND b.status = 'ok' AND ca.sample_index = 0 AND cb.sample_index = 0 "
            "ORDER BY a.prefix_id", (category, grader_hash, arm_a, arm_b))
        return [(r[0], bool(r[1]), bool(r[2])) for r in rows]

    def rank_prefixes_by_judgments(self, arm: str, limit: int, *, order: str = "flags",
                                   categories: Sequence[str] | None = None,
                                   pool: str = "production") -> list[tuple[str, int, float | None]]:
        """(prefix_id, categories flagged, max score) of the ``limit`` highest-risk prefixes of a
        pool by their ``ok`` judgments in ``arm`` (the challenging-prompts top-k selection).

        ``order="flags"``: prefixes with at least one flagged category, by number of distinct
        categories flagged, then max score (no score last), then prefix id. ``order="score"``:
        prefixes with a score, by max score, then flags, then prefix id. The ranking runs in
        SQLite with a bounded sort, so memory does not grow with the run."""
        if order not in ("flags", "score"):
            raise ValueError(f"unknown ranking order {order!r} (flags, score)")
        cats = list(categories or ())
        cat_sql = f" AND j.category IN ({','.join('?' * len(cats))})" if cats else ""
        having, order_sql = (("flags > 0", "flags DESC, top DESC NULLS LAST, j.prefix_id") if order == "flags"
                             else ("top IS NOT NULL", "top DESC, flags DESC, j.prefix_id"))
        rows = self._query(
            "SELECT j.prefix_id, COUNT(DISTINCT CASE WHEN j.label = 1 THEN j.category END) AS flags, "
            "MAX(json_extract(j.record, '$.score')) AS top FROM judgments j "
            "JOIN prefixes p ON p.id = j.prefix_id "
            f"WHERE j.arm = ? AND j.status = 'ok' AND p.pool = ?{cat_sql} GROUP BY j.prefix_id "
            f"HAVING {having} ORDER BY {order_sql} LIMIT ?", (arm, pool, *cats, limit))
        return [(r[0], int(r[1]), None if r[2] is None else float(r[2])) for r in rows]

    # -- estimates, comparisons, validations -------------------------------------------------
    def put_estimates(self, estimates: Iterable[Estimate]) -> int:
        now = utc_now()
        return self._write(
            "INSERT OR REPLACE INTO estimates (id, category, arm, grader_hash, record, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(e.id, e.category, e.arm, e.grader_hash, e.model_dump_json(), now) for e in estimates])

    def estimates(self) -> list[Estimate]:
        return [Estimate.model_validate_json(r[0]) for r in
                self._query("SELECT record FROM estimates ORDER BY category, arm")]

    def put_comparisons(self, comparisons: Iterable[Comparison]) -> int:
        now = utc_now()
        return self._write(
            "INSERT OR REPLACE INTO comparisons (id, category, arm_a, arm_b, grader_hash, record, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(c.id, c.category, c.arm_a, c.arm_b, c.grader_hash, c.model_dump_json(), now)
             for c in comparisons])

    def comparisons(self) -> list[Comparison]:
        return [Comparison.model_validate_json(r[0]) for r in
                self._query("SELECT record FROM comparisons ORDER BY category, arm_a, arm_b")]

    def put_grader_validation(self, grader_hash: str, category: str, dataset: str,
                              record: dict[str, Any]) -> None:
        from deploysim.hashing import content_hash

        vid = content_hash([grader_hash, category, dataset])
        self._write("INSERT OR REPLACE INTO grader_validations (id, grader_hash, category, dataset, "
                    "record, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [(vid, grader_hash, category, dataset, _dumps(record), utc_now())])

    def grader_validations(self, grader_hash: str | None = None) -> list[dict[str, Any]]:
        where, params = _where(grader_hash=grader_hash)
        rows = self._query(f"SELECT grader_hash, category, dataset, record FROM grader_validations{where} "
                           "ORDER BY category, dataset", params)
        return [{"grader_hash": r[0], "category": r[1], "dataset": r[2], **orjson.loads(r[3])}
                for r in rows]

    # -- generic access for export ---------------------------------------------------------
    TABLES: tuple[str, ...] = ("prefixes", "completions", "judgments", "estimates", "comparisons",
                               "grader_validations", "sources", "quarantine", "run_meta",
                               "stage_reports")

    def iter_table_json(self, table: str, batch: int = 2000) -> Iterator[dict[str, Any]]:
        """Rows of a table as dicts (the record JSON merged over the key columns)."""
        if table not in self.TABLES:
            raise ValueError(f"unknown table {table!r}; known: {', '.join(self.TABLES)}")
        last = -1
        while True:
            with self._lock:
                cur = self._conn.execute(
                    f"SELECT rowid AS _rowid, * FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT ?",
                    (last, batch))
                cols = [d[0] for d in cur.description]
                rows = cur.fetchall()
            if not rows:
                return
            for row in rows:
                item = dict(zip(cols, row, strict=True))
                last = item.pop("_rowid")
                rec = item.pop("record", None) if "record" in item else None
                if rec is not None:
                    decoded = orjson.loads(rec)
                    if isinstance(decoded, dict):
                        item = {**item, **decoded}
                    else:
                        item["record"] = decoded
                elif "value" in item and table == "run_meta":
                    item["value"] = orjson.loads(item["value"])
                yield item


def _where(**filters: Any) -> tuple[str, tuple[Any, ...]]:
    parts = [f"{k} = ?" for k, v in filters.items() if v is not None]
    params = tuple(v for v in filters.values() if v is not None)
    return (" WHERE " + " AND ".join(parts) if parts else "", params)
