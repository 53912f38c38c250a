"""A fast mock OpenAI-compatible server for tests and benchmarks (loopback only).

It answers ``POST /v1/chat/completions`` after a configurable latency with a reply derived
deterministically from the request (so two runs over the same prefixes give the same
completions), and injects faults on demand: 429 with Retry-After, 500, hangs (client
timeouts), connection resets, malformed and truncated bodies, empty ``choices`` and cut
output (``finish_reason = "length"``) — at random shares, for the first k attempts of every
distinct request, or as a 429 storm at start. The Files and Batches endpoints of the Batch API
are faked in :mod:`deploysim.models.mock_batches`.

It is a bare asyncio protocol rather than a web framework so that the server, not the client
under test, is never the bottleneck: a few tens of microseconds of CPU per request.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from deploysim.models.mock_batches import BatchStore
from deploysim.models.mock_http import HttpConnection, Request, Response

FAULT_KINDS = ("429", "500", "timeout", "reset", "malformed", "truncated", "empty", "length")


@dataclass
class MockConfig:
    latency_s: float = 0.0
    jitter_s: float = 0.0
    #: random shares of requests that fail with each kind (see FAULT_KINDS)
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_timeout: float = 0.0
    rate_reset: float = 0.0
    rate_malformed: float = 0.0
    rate_truncated: float = 0.0
    rate_empty: float = 0.0
    rate_length: float = 0.0
    retry_after_s: float | None = 1.0
    #: a hung request is held this long, then its connection is closed
    hang_s: float = 30.0
    #: every chat request in the first ``storm_s`` seconds (from the first request) gets a 429
    storm_s: float = 0.0
    #: the first ``fail_first`` attempts of every distinct request fail with ``fail_kind``
    fail_first: int = 0
    fail_kind: str = "500"
    seed: int = 0
    #: Batch API fake: seconds a batch stays in progress; every k-th line fails; share processed
    batch_delay_s: float = 0.0
    batch_fail_every: int = 0
    batch_complete_share: float = 1.0

    def shares(self) -> list[tuple[str, float]]:
        return [(k, getattr(self, f"rate_{k}")) for k in FAULT_KINDS if getattr(self, f"rate_{k}") > 0]


@dataclass
class MockStats:
    requests: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    peak_in_flight: int = 0
    #: monotonic times of chat requests (bounded), to check that Retry-After was honoured
    arrivals: list[float] = field(default_factory=list)


def _fill_schema(schema: dict[str, Any]) -> Any:
    """A minimal value that satisfies a JSON schema (so JSON-mode callers can parse it)."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = kind[0]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: _fill_schema(props.get(k, {})) for k in schema.get("required", list(props))}
    return {"string": "mock", "integer": 0, "number": 0, "boolean": False, "array": [],
            "null": None}.get(str(kind), "mock")


def synthesize(body: dict[str, Any], *, cut: bool = False) -> dict[str, Any]:
    """The deterministic chat completion for a request body."""
    digest = hashlib.sha256(orjson.dumps([body.get("messages"), body.get("seed"), body.get("model")],
                                         option=orjson.OPT_SORT_KEYS)).hexdigest()
    last_user = next((m.get("content") or "" for m in reversed(body.get("messages") or [])
                      if m.get("role") == "user"), "")
    fmt = body.get("response_format") or {}
    tools = body.get("tools") or []
    message: dict[str, Any] = {"role": "assistant"}
    if fmt.get("type") == "json_schema":
        message["content"] = orjson.dumps(_fill_schema(fmt.get("json_schema", {}).get("schema", {}))).decode()
    elif fmt.get("type") == "json_object":
        message["content"] = orjson.dumps({"reply": digest[:12]}).decode()
    elif tools and int(digest[:2], 16) % 2 == 0:
        message["content"] = None
        message["tool_calls"] = [{"id": f"call_{digest[:8]}", "type": "function", "function": {
            "name": tools[0]["function"]["name"], "arguments": orjson.dumps({"q": digest[:6]}).decode()}}]
    else:
        message["content"] = f"mock reply {digest[:12]} to: {str(last_user)[:60]}"
    finish = "tool_calls" if "tool_calls" in message else "stop"
    if cut and message.get("content"):
        message["content"] = message["content"][: max(1, len(message["content"]) // 3)]
        finish = "length"
    out_tokens = len(message.get("content") or "") // 4 + 1
    choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish}
    if body.get("logprobs"):
        words = (message.get("content") or "").split()
        choice["logprobs"] = {"content": [{"token": w, "logprob": -0.1, "bytes": None} for w in words]}
    n = int(body.get("n") or 1)
    return {"id": f"chatcmpl-{digest[:16]}", "object": "chat.completion", "created": 0,
            "model": body.get("model") or "mock", "choices": [choice | {"index": i} for i in range(n)],
            "usage": {"prompt_tokens": len(orjson.dumps(body.get("messages"))) // 4,
                      "completion_tokens": out_tokens,
                      "total_tokens": len(orjson.dumps(body.get("messages"))) // 4 + out_tokens}}


class MockServer:
    """The server; ``async with MockServer(cfg) as srv`` in a loop, or :class:`MockServerThread`."""

    def __init__(self, config: MockConfig | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or MockConfig()
        self.stats = MockStats()
        self.batches = BatchStore(self)
        self._host, self._port = host, port
        self._rng = random.Random(self.config.seed)
        self._attempts: Counter[str] = Counter()
        self._first_at: float | None = None
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[HttpConnection] = set()

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._port}/v1"

    async def start(self) -> MockServer:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: HttpConnection(self.dispatch, self._conns),
                                                self._host, self._port, backlog=4096)
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for conn in list(self._conns):
                conn.abort()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> MockServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- routing ---------------------------------------------------------------------------
    def dispatch(self, req: Request, conn: HttpConnection) -> None:
        if req.path.endswith("/chat/completions") and req.method == "POST":
            self._chat(req, conn)
        elif "/files" in req.path or "/batches" in req.path:
            conn.send(self.batches.handle(req))
        elif req.path.endswith("/health"):
            conn.send(Response(200, b'{"status":"ok"}'))
        elif req.path.endswith("/stats"):
            s = self.stats
            conn.send(Response(200, orjson.dumps({"requests": s.requests, "outcomes": dict(s.outcomes),
                                                  "peak_in_flight": s.peak_in_flight})))
        else:
            conn.send(Response(404, b'{"error": {"message": "no such route", "code": "not_found"}}'))

    def _fault(self, raw: bytes, now: float) -> str | None:
        cfg = self.config
        if self._first_at is None:
            self._first_at = now
        if cfg.storm_s and now - self._first_at < cfg.storm_s:
            return "429"
        if cfg.fail_first:
            key = hashlib.blake2b(raw, digest_size=12).hexdigest()
            self._attempts[key] += 1
            if self._attempts[key] <= cfg.fail_first:
                return cfg.fail_kind
        draw = self._rng.random()
        for kind, share in cfg.shares():
            if draw < share:
                return kind
            draw -= share
        return None

    def _chat(self, req: Request, conn: HttpConnection) -> None:
        cfg, stats = self.config, self.stats
        now = time.monotonic()
        stats.requests += 1
        if len(stats.arrivals) < 200_000:
            stats.arrivals.append(now)
        kind = self._fault(req.body, now)
        stats.outcomes[kind or "ok"] += 1
        if kind == "timeout":
            conn.hold(cfg.hang_s)
            return
        delay = cfg.latency_s + (self._rng.random() * cfg.jitter_s if cfg.jitter_s else 0.0)
        stats.in_flight += 1
        stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
        asyncio.get_running_loop().call_later(delay, self._answer, req, conn, kind)

    def _answer(self, req: Request, conn: HttpConnection, kind: str | None) -> None:
        self.stats.in_flight -= 1
        if kind == "reset":
            conn.abort()
        elif kind == "429":
            headers = {}
            if self.config.retry_after_s is not None:
                headers = {"retry-after-ms": str(int(self.config.retry_after_s * 1000)),
                           "Retry-After": str(max(1, round(self.config.retry_after_s)))}
            conn.send(Response(429, b'{"error": {"message": "Rate limit reached", "type": "requests", '
                                    b'"code": "rate_limit_exceeded"}}', headers))
        elif kind == "500":
            conn.send(Response(500, b'{"error": {"message": "The server had an error", '
                                    b'"type": "server_error"}}'))
        elif kind == "malformed":
            conn.send(Response(200, b'{"id": "chatcmpl-broken", "choices": [{"message": {"content": "x'))
        else:
            try:
                body = orjson.loads(req.body)
            except orjson.JSONDecodeError:
                conn.send(Response(400, b'{"error": {"message": "invalid JSON body"}}'))
                return
            payload = synthesize(body, cut=kind == "length")
            if kind == "empty":
                payload["choices"] = []
            data = orjson.dumps(payload)
            if kind == "truncated":
                conn.send_truncated(Response(200, data))
            else:
                conn.send(Response(200, data))


class MockServerThread:
    """Run a :class:`MockServer` on its own event loop in a daemon thread (for sync callers
    and for subprocess clients in tests)."""

    def __init__(self, config: MockConfig | None = None) -> None:
        self.server = MockServer(config)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="mock-openai")

    def __enter__(self) -> MockServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(timeout=10)
        return self.server

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


async def serve_forever(config: MockConfig, port: int, ready: Any = print) -> None:
    """Run until cancelled; ``ready`` receives the base URL once listening."""
    async with MockServer(config, port=port) as srv:
        ready(srv.base_url)
        await asyncio.Event().wait()
