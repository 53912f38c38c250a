"""One writer per run directory.

:class:`RunLock` takes an exclusive ``flock`` on ``RUN_DIR/run.lock`` for the duration of a
command and writes the holder's pid, host, command and start time into the file. A second
``deploysim`` command on the same run directory is refused with a message naming the holder.
The kernel drops the lock when the holder dies (even on kill -9), so a lock left by a crash is
never stale: the next command takes it and overwrites the holder's details.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
from pathlib import Path
from typing import IO

import orjson

from deploysim.records import utc_now

LOCK_NAME = "run.lock"


class RunLockedError(RuntimeError):
    """Another process holds the run directory."""


class RunLock:
    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self._fh: IO[bytes] | None = None

    def holder(self) -> dict[str, object]:
        try:
            data = orjson.loads(self.path.read_bytes() or b"{}")
        except (OSError, orjson.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+b")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            h = self.holder()
            raise RunLockedError(
                f"{self.path.parent}: the run directory is in use by pid {h.get('pid', '?')} on "
                f"{h.get('host', '?')} since {h.get('since', '?')} ({h.get('command', 'deploysim')}); "
                "wait for it to finish or stop it — two writers would double-spend and "
                "double-count") from None
        fh.seek(0)
        fh.truncate()
        fh.write(orjson.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": utc_now(),
                               "command": " ".join(["deploysim", *sys.argv[1:]])[:300]}))
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
