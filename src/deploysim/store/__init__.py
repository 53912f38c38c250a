"""The run store: one SQLite database per run directory (see :mod:`deploysim.store.db`)."""

from deploysim.store.db import DB_NAME, RunStore

__all__ = ["DB_NAME", "RunStore"]
