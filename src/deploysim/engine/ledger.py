"""The spend ledger: a write-ahead record of every request an invocation sends.

A run is resumed after kills, Ctrl-C and budget stops, so "what did this arm cost" is a sum
over invocations, and a request that was on the wire when the process died may have been
paid for without its answer ever being stored. Completions alone cannot tell either story.

Each invocation appends to its own file, one line per event, with a plain ``write`` on an
``O_APPEND`` descriptor (no Python buffer: a ``kill -9`` loses nothing the kernel accepted):

* ``s ID RESERVED`` before a request is sent (its worst-case cost, the budget reservation);
* ``a ID IN OUT COST`` when its answer, or an error status, comes back.

When the invocation ends, its totals go to the run database and the file is removed; a file
left behind by a process that died is read by the next invocation the same way, and every
``s`` without its ``a`` is counted as *lost in flight*, with its reserved cost as the most it
can have cost. A request that timed out or lost its connection is never answered either: the
endpoint may have processed and billed it, so it is lost in flight too. Batch-API arms are
accounted from their results instead (a batch is paid for per result, and its ids are stored).
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import orjson


@dataclass
class SpendTotals:
    """Requests sent and what they cost, summed over one or more invocations."""

    requests: int = 0  # attempts sent (retries included)
    answered: int = 0  # attempts whose answer or failure came back
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    #: sent, and no answer recorded: the process died or was cancelled first, or the request
    #: timed out or lost its connection (it may still have been billed)
    lost_in_flight: int = 0
    #: the most those can have cost (their budget reservations)
    lost_reserved_usd: float = 0.0
    invocations: int = 0

    def __add__(self, other: SpendTotals) -> SpendTotals:
        return SpendTotals(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    @property
    def worst_case_usd(self) -> float:
        """Spend including the most the lost requests can have cost (what a budget counts)."""
        return self.cost_usd + self.lost_reserved_usd

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class SpendLedger:
    """The append-only event file of one invocation of one (stage, scope)."""

    def __init__(self, path: Path, *, stage: str, scope: str, invocation: str) -> None:
        self.path = path
        self.stage, self.scope, self.invocation = stage, scope, invocation
        self.totals = SpendTotals(invocations=1)
        self._reserved: dict[int, float] = {}
        self._next = 0
        header = {"stage": stage, "scope": scope, "invocation": invocation, "pid": os.getpid(),
                  "host": socket.gethostname()}
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        os.write(self._fd, b"h " + orjson.dumps(header) + b"\n")

    def sent(self, reserved_usd: float) -> int:
        """Record a request about to go out; returns its ledger id."""
        self._next += 1
        n = self._next
        self._reserved[n] = reserved_usd
        self.totals.requests += 1
        if self._fd is not None:
            os.write(self._fd, f"s {n} {reserved_usd:.9g}\n".encode())
        return n

    def answered(self, n: int, input_tokens: int = 0, output_tokens: int = 0, cost_usd: float = 0.0) -> None:
        """Record that request ``n`` came back (with its usage when it succeeded)."""
        if self._reserved.pop(n, None) is None:
            return
        t = self.totals
        t.answered += 1
        t.input_tokens += input_tokens
        t.output_tokens += output_tokens
        t.cost_usd += cost_usd
        if self._fd is not None:
            os.write(self._fd, f"a {n} {input_tokens} {output_tokens} {cost_usd:.9g}\n".encode())

    def snapshot(self) -> SpendTotals:
        """Totals so far, with requests still unanswered counted as lost (what they would be
        if the process died now)."""
        t = SpendTotals(**asdict(self.totals))
        t.lost_in_flight += len(self._reserved)
        t.lost_reserved_usd += sum(self._reserved.values())
        return t

    def close(self) -> SpendTotals:
        """Stop recording; requests still unanswered (cancelled mid-flight) count as lost."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.totals.lost_in_flight += len(self._reserved)
        self.totals.lost_reserved_usd += sum(self._reserved.values())
        self._reserved.clear()
        return self.totals


def read_ledger(path: Path) -> tuple[dict[str, Any], SpendTotals]:
    """A ledger file's header and totals; a torn last line (the writer died mid-write) is
    ignored, and every request without its answer is lost in flight."""
    header: dict[str, Any] = {}
    totals = SpendTotals(invocations=1)
    reserved: dict[str, float] = {}
    with path.open("rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break
            kind, _, rest = raw.rstrip(b"\n").partition(b" ")
            try:
                if kind == b"h":
                    header = orjson.loads(rest)
                elif kind == b"s":
                    n, cost = rest.split()
                    reserved[n.decode()] = float(cost)
                    totals.requests += 1
                elif kind == b"a":
                    n, tin, tout, cost = rest.split()
                    usage = (int(tin), int(tout), float(cost))  # parse all before counting
                    if reserved.pop(n.decode(), None) is not None:
                        totals.answered += 1
                        totals.input_tokens += usage[0]
                        totals.output_tokens += usage[1]
                        totals.cost_usd += usage[2]
            except (ValueError, orjson.JSONDecodeError):
                continue  # a garbled line cannot un-send a request; skip it
    totals.lost_in_flight = len(reserved)
    totals.lost_reserved_usd = sum(reserved.values())
    return header, totals


def writer_alive(header: dict[str, Any]) -> bool:
    """True when the process that wrote a ledger is still running on this host."""
    pid = header.get("pid")
    if not isinstance(pid, int) or header.get("host") != socket.gethostname() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
