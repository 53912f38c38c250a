"""The run store: one SQLite database per run directory (see :mod:`deploysim.store.db`)."""

from deploysim.store.base import DB_NAME
from deploysim.store.db import RunStore

__all__ = ["DB_NAME", "RunStore"]
