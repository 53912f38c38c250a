"""The quarantine file: every unusable row with its source, line and reason.

One JSONL file per source (the :class:`deploysim.records.Quarantined` shape), rewritten on
each read so it always matches the counts just reported. Optionally each batch is also handed
to a sink (the run store's quarantine table).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import orjson

from deploysim.records import Quarantined

EXCERPT_CHARS = 200
EXAMPLES_KEPT = 20
_FLUSH_ROWS = 1000


class QuarantineLog:
    """Counts quarantined rows of one source, writes them to ``path`` (created on the first
    row; a stale file from an earlier read is removed), keeps the first few as examples."""

    def __init__(self, source: str, path: Path | None,
                 sink: Callable[[list[Quarantined]], Any] | None = None) -> None:
        self.source = source
        self.path = path
        self.count = 0
        self.examples: list[Quarantined] = []
        self._sink = sink
        self._pending: list[Quarantined] = []
        self._file: IO[bytes] | None = None
        if path is not None:
            path.unlink(missing_ok=True)

    def add(self, line: int, reason: str, excerpt: bytes | str = b"") -> None:
        if isinstance(excerpt, bytes):
            excerpt = excerpt[:EXCERPT_CHARS * 4].decode("utf-8", "replace")
        row = Quarantined(source=self.source, line=line, reason=reason, excerpt=excerpt[:EXCERPT_CHARS])
        self.count += 1
        if len(self.examples) < EXAMPLES_KEPT:
            self.examples.append(row)
        if self.path is not None or self._sink is not None:
            self._pending.append(row)
            if len(self._pending) >= _FLUSH_ROWS:
                self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        if self.path is not None:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("wb")
            self._file.write(b"".join(orjson.dumps(r.model_dump()) + b"\n" for r in self._pending))
        if self._sink is not None:
            self._sink(self._pending)
        self._pending = []

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None

    @property
    def written_path(self) -> Path | None:
        """The quarantine file, if any row was written to it."""
        return self.path if self.path is not None and self.count else None
