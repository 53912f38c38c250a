"""Minimal HTTP/1.1 server connection for the mock server: keep-alive, Content-Length and
chunked request bodies, in-order responses, and the byte-level faults a web framework would
not let us produce (resets, truncated bodies, hung requests)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests",
           500: "Internal Server Error"}
MAX_HEADER = 64 * 1024


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def head(self, length: int | None = None) -> bytes:
        lines = [f"HTTP/1.1 {self.status} {REASONS.get(self.status, 'Status')}",
                 f"Content-Type: {self.content_type}",
                 f"Content-Length: {len(self.body) if length is None else length}"]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


class HttpConnection(asyncio.Protocol):
    """One client connection; parsed requests go to ``handler(request, connection)``, which
    answers now or later through :meth:`send` (or a fault method)."""

    def __init__(self, handler: Callable[[Request, HttpConnection], None],
                 registry: set[HttpConnection]) -> None:
        self._handler = handler
        self._registry = registry
        self._buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._registry.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._registry.discard(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self._buf += data
        while True:
            req = self._parse()
            if req is None:
                return
            self._handler(req, self)

    def _parse(self) -> Request | None:
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > MAX_HEADER:
                self.abort()
            return None
        head = bytes(self._buf[:end]).decode("latin-1").split("\r\n")
        method, path, _ = ([*head[0].split(" ", 2), "", ""])[:3]
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        start = end + 4
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parsed = _dechunk(self._buf, start)
            if parsed is None:
                return None
            body, consumed = parsed
        else:
            length = int(headers.get("content-length", "0") or 0)
            if len(self._buf) < start + length:
                return None
            body, consumed = bytes(self._buf[start:start + length]), start + length
        del self._buf[:consumed]
        return Request(method, path.split("?", 1)[0], headers, body)

    def send(self, response: Response) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(response.head() + response.body)

    def send_truncated(self, response: Response) -> None:
        """Announce the full length, send a third of the body, then close."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(response.head() + response.body[: len(response.body) // 3])
            self.transport.close()

    def hold(self, seconds: float) -> None:
        """Never answer; close the connection after ``seconds``."""
        asyncio.get_running_loop().call_later(seconds, self.abort)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def _dechunk(buf: bytearray, start: int) -> tuple[bytes, int] | None:
    """Decode a complete chunked body at ``start``; None while incomplete."""
    out = bytearray()
    pos = start
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";")[0] or b"0", 16)
        pos = eol + 2
        if size == 0:
            trailer_end = buf.find(b"\r\n", pos)
            return (bytes(out), trailer_end + 2) if trailer_end >= 0 else None
        if len(buf) < pos + size + 2:
            return None
        out += buf[pos:pos + size]
        pos += size + 2
