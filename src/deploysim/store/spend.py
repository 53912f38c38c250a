"""Spend across invocations: the ``spend`` table and the ledger files it is built from.

A stage opens one :class:`~deploysim.engine.ledger.SpendLedger` per (stage, scope) — a scope
is an arm with its generator hash, or the judge — and finishes it when it ends. Opening a
ledger first folds in every file a dead process left behind, so a resumed run's totals
include what was sent (and possibly paid) before the kill.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from deploysim.records import utc_now
from deploysim.store.base import StoreBase

if TYPE_CHECKING:
    from deploysim.engine.ledger import SpendLedger, SpendTotals

SPEND_SCHEMA = """
CREATE TABLE IF NOT EXISTS spend (
    invocation TEXT PRIMARY KEY, stage TEXT NOT NULL, scope TEXT NOT NULL, status TEXT NOT NULL,
    requests INTEGER NOT NULL, answered INTEGER NOT NULL, input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL, cost_usd REAL NOT NULL, lost_in_flight INTEGER NOT NULL,
    lost_reserved_usd REAL NOT NULL, ended_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS spend_scope ON spend (stage, scope);
"""
SPEND_TABLES: tuple[str, ...] = ("spend",)
LEDGER_DIR = "ledger"
_COLUMNS = ("requests", "answered", "input_tokens", "output_tokens", "cost_usd", "lost_in_flight",
            "lost_reserved_usd")


class SpendTables(StoreBase):
    def __init__(self, run_dir: Path, conn: sqlite3.Connection) -> None:
        super().__init__(run_dir, conn)
        #: ledgers this process has open (never folded while still being written)
        self._live_ledgers: set[Path] = set()

    @property
    def ledger_dir(self) -> Path:
        return self.run_dir / LEDGER_DIR

    def open_ledger(self, stage: str, scope: str) -> SpendLedger:
        """A new ledger for this invocation of ``(stage, scope)``, after folding in the files
        of invocations that died."""
        from deploysim.engine.ledger import SpendLedger  # the engine package imports the store

        self.reconcile_ledgers()
        self.ledger_dir.mkdir(exist_ok=True)
        invocation = uuid.uuid4().hex
        ledger = SpendLedger(self.ledger_dir / f"{invocation}.log", stage=stage, scope=scope,
                             invocation=invocation)
        self._live_ledgers.add(ledger.path)
        return ledger

    def finish_ledger(self, ledger: SpendLedger) -> SpendTotals:
        """Close the ledger, store its totals, remove its file; returns its totals."""
        totals = ledger.close()
        self._put_spend(ledger.invocation, ledger.stage, ledger.scope, "finished", totals)
        ledger.path.unlink(missing_ok=True)
        self._live_ledgers.discard(ledger.path)
        return totals

    def reconcile_ledgers(self) -> int:
        """Fold ledger files left by processes that died into the ``spend`` table (their
        unanswered requests counted as lost in flight); returns how many were folded."""
        from deploysim.engine.ledger import read_ledger, writer_alive

        if not self.ledger_dir.is_dir():
            return 0
        folded = 0
        for path in sorted(self.ledger_dir.glob("*.log")):
            if path in self._live_ledgers:
                continue
            header, totals = read_ledger(path)
            if writer_alive(header):
                continue
            invocation = str(header.get("invocation") or path.stem)
            self._put_spend(invocation, str(header.get("stage") or "?"), str(header.get("scope") or "?"),
                            "killed", totals)
            path.unlink(missing_ok=True)
            folded += 1
        return folded

    def spend_totals(self, stage: str | None = None, scope: str | None = None) -> SpendTotals:
        """Totals over every stored invocation matching ``stage`` and ``scope``."""
        from deploysim.engine.ledger import SpendTotals

        where = " AND ".join(f"{k} = ?" for k, v in (("stage", stage), ("scope", scope)) if v is not None)
        params = tuple(v for v in (stage, scope) if v is not None)
        row = self._query(f"SELECT {', '.join(f'COALESCE(SUM({c}), 0)' for c in _COLUMNS)}, COUNT(*) "
                          f"FROM spend{' WHERE ' + where if where else ''}", params)[0]
        return SpendTotals(requests=int(row[0]), answered=int(row[1]), input_tokens=int(row[2]),
                           output_tokens=int(row[3]), cost_usd=float(row[4]), lost_in_flight=int(row[5]),
                           lost_reserved_usd=float(row[6]), invocations=int(row[7]))

    def _put_spend(self, invocation: str, stage: str, scope: str, status: str, t: SpendTotals) -> None:
        self._write(f"INSERT OR REPLACE INTO spend (invocation, stage, scope, status, {', '.join(_COLUMNS)}, "
                    "ended_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(invocation, stage, scope, status, t.requests, t.answered, t.input_tokens,
                      t.output_tokens, t.cost_usd, t.lost_in_flight, t.lost_reserved_usd, utc_now())])
