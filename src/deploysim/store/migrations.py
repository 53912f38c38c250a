"""Schema migrations of the run database, applied on open.

A run database records its ``schema_version`` in ``run_meta``. Opening an older database runs
each migration from its version up to :data:`~deploysim.store.base.SCHEMA_VERSION` in one
transaction (all or nothing); a database written by a newer deploysim is refused rather than
misread. Each migration is a function of the connection, registered under the version it
upgrades *from*.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import orjson


class SchemaError(RuntimeError):
    """The run database cannot be used by this version of deploysim."""


def _v1_to_v2(conn: sqlite3.Connection) -> None:
    """Completions: ``model_spec_hash`` became ``generator_hash`` (spec + arm environment);
    prefixes may keep their long history in shared blocks (``blocks`` column; v1 rows hold
    their messages inline and keep working)."""
    prefix_cols = [r[1] for r in conn.execute("PRAGMA table_info(prefixes)")]
    if prefix_cols and "blocks" not in prefix_cols:
        conn.execute("ALTER TABLE prefixes ADD COLUMN blocks TEXT")
    cols = [r[1] for r in conn.execute("PRAGMA table_info(completions)")]
    if not cols:
        return
    if "model_spec_hash" in cols:
        conn.execute("ALTER TABLE completions RENAME COLUMN model_spec_hash TO generator_hash")
    conn.execute("UPDATE completions SET record = json_set(json_remove(record, '$.model_spec_hash'), "
                 "'$.generator_hash', json_extract(record, '$.model_spec_hash')) "
                 "WHERE json_extract(record, '$.model_spec_hash') IS NOT NULL")


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _v1_to_v2}


def stored_version(conn: sqlite3.Connection) -> int | None:
    """The database's schema version, or None for a new (empty) database."""
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'run_meta'").fetchone()
    if not exists:
        return None
    row = conn.execute("SELECT value FROM run_meta WHERE key = 'schema_version'").fetchone()
    return int(orjson.loads(row[0])) if row else None


def migrate(conn: sqlite3.Connection, current: int, *, path: str) -> int | None:
    """Bring the database to ``current``; returns the version found (None when new)."""
    found = stored_version(conn)
    if found is None or found == current:
        return found
    if found > current:
        raise SchemaError(f"{path}: run database schema version {found} is newer than this deploysim "
                          f"understands ({current}); upgrade deploysim to open it")
    conn.execute("BEGIN IMMEDIATE")
    try:
        for version in range(found, current):
            step = MIGRATIONS.get(version)
            if step is None:
                raise SchemaError(f"{path}: no migration from schema version {version}")
            step(conn)
        conn.execute("UPDATE run_meta SET value = ? WHERE key = 'schema_version'", (str(current),))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return found
