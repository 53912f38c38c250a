"""The run database: one SQLite file (WAL) per run directory.

Every table is keyed by a content hash, and every write is an idempotent batched upsert, so a
run killed at any instant resumes where it stopped, redoes nothing that finished and never
duplicates a row. Records are stored as their JSON plus the few columns queries need. The
store package is the only code that speaks SQL; stages use these methods. Table groups live
in :mod:`deploysim.store.work` and :mod:`deploysim.store.results`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from deploysim.records import Quarantined, utc_now
from deploysim.store.base import DB_NAME, SCHEMA, SCHEMA_VERSION, _dumps
from deploysim.store.migrations import migrate
from deploysim.store.results import ResultTables
from deploysim.store.spend import SPEND_SCHEMA, SPEND_TABLES, SpendTables
from deploysim.store.work import WorkTables


class RunStore(WorkTables, ResultTables, SpendTables):
    """A run directory and its database. Thread-safe for one writer (a lock serialises use).

    Open it with :meth:`open`; use as a context manager so the connection closes.
    """

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
        try:
            found = migrate(conn, SCHEMA_VERSION, path=str(db))
            conn.executescript(SCHEMA)
            conn.executescript(SPEND_SCHEMA)
        except BaseException:
            conn.close()
            raise
        store = cls(path, conn)
        if found is None:
            store.set_meta("schema_version", SCHEMA_VERSION)
            store.set_meta("created_at", utc_now())
        elif found != SCHEMA_VERSION:
            store.set_meta("migrated_from", found)
        return store

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def vacuum(self) -> None:
        """Drop history blocks no prefix references any more, then rebuild the database file so
        rewritten (e.g. de-identified) text does not survive in free pages or the WAL."""
        with self._lock:
            self._conn.execute("DELETE FROM message_blocks WHERE id NOT IN (SELECT j.value FROM prefixes p, "
                               "json_each(p.blocks) j WHERE p.blocks IS NOT NULL)")
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

    # -- generic access for export ---------------------------------------------------------
    TABLES: tuple[str, ...] = ("prefixes", "completions", "request_settings", "judgments", "graders",
                               "estimates", "comparisons", "grader_validations", "sources", "quarantine",
                               "run_meta", "stage_reports", *SPEND_TABLES)

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
            if table == "prefixes":  # history kept in shared blocks is put back
                full = self.decode_prefixes([(row[cols.index("record")],
                                              row[cols.index("blocks")]) for row in rows])
                rows = [(*row[:cols.index("record")], p.model_dump_json(), *row[cols.index("record") + 1:])
                        for row, p in zip(rows, full, strict=True)]
            for row in rows:
                item = dict(zip(cols, row, strict=True))
                last = item.pop("_rowid")
                item.pop("blocks", None)
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
