"""Provider plugins: how a ``[models.NAME]`` spec becomes a provider.

A provider plugin is an object with a ``name``, ``build(spec, resources)`` returning a
:class:`~deploysim.models.base.Provider`, ``is_local(spec)`` (whether requests stay on this
machine — the send policy's input) and ``endpoint(spec)`` (a credential-free label of where
requests go). Plugins are registered under the ``deploysim.providers`` entry-point group; the
built-ins below register through that same group (see ``pyproject.toml``), the way ``llm``
registers its model plugins.

API keys come from the environment only, never from the run file or the run store: from
``api_key_env`` when the spec names a variable (which must then be set), else the provider's
default variable (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``) — and that default key is sent only
to the provider's own default endpoint, never to a ``base_url`` it was not configured for.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

from deploysim.models.base import Provider
from deploysim.models.spec import ModelSpec
from deploysim.models.wire import is_loopback_url


@runtime_checkable
class ProviderPlugin(Protocol):
    name: str

    def build(self, spec: ModelSpec, resources: ProviderResources) -> Provider: ...

    def is_local(self, spec: ModelSpec) -> bool: ...

    def endpoint(self, spec: ModelSpec) -> str: ...


def strip_credentials(url: str | None) -> str | None:
    """``url`` without user:password@ and without its query string (where tokens hide)."""
    if not url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass
class ProviderResources:
    """Shared, process-level resources plugins may use: the embedded model server (started on
    first use, shared by every stage of a run) and API-key lookup."""

    environ: dict[str, str] | None = None
    _embedded: object | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def env(self, name: str) -> str | None:
        return (self.environ if self.environ is not None else os.environ).get(name)

    def embedded_server(self, spec: ModelSpec) -> object:
        from deploysim.models.embedded import EmbeddedServer

        with self._lock:
            if self._embedded is None:
                server = EmbeddedServer(slots=spec.slots, context_per_slot=spec.context_per_slot,
                                        threads=spec.threads)
                server.start()
                self._embedded = server
                self._closers.append(server.stop)
            return self._embedded

    def close(self) -> None:
        with self._lock:
            closers, self._closers = self._closers, []
            self._embedded = None
        for close in reversed(closers):
            close()


def api_key(spec: ModelSpec, resources: ProviderResources, default_env: str | None,
            default_url: str | None) -> str | None:
    """The key for ``spec`` under the rules in the module docstring."""
    if spec.api_key_env:
        key = resources.env(spec.api_key_env)
        if not key:
            raise ValueError(f"models: api_key_env = {spec.api_key_env!r} but that environment variable is "
                             "not set")
        return key
    own_endpoint = spec.base_url is None or spec.base_url.rstrip("/") == (default_url or "").rstrip("/")
    if default_env and own_endpoint:
        return resources.env(default_env)
    return None


class OpenAIPlugin:
    """Any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, SGLang, Ollama, llama.cpp)."""

    name = "openai"

    def build(self, spec: ModelSpec, resources: ProviderResources) -> Provider:
        from deploysim.models.openai_compat import DEFAULT_OPENAI_URL, OpenAICompatProvider

        key = api_key(spec, resources, "OPENAI_API_KEY", DEFAULT_OPENAI_URL)
        return OpenAICompatProvider(base_url=spec.base_url or DEFAULT_OPENAI_URL, model=spec.model,
                                    api_key=key, max_connections=spec.concurrency)

    def is_local(self, spec: ModelSpec) -> bool:
        return is_loopback_url(spec.base_url)

    def endpoint(self, spec: ModelSpec) -> str:
        from deploysim.models.openai_compat import DEFAULT_OPENAI_URL

        return strip_credentials(spec.base_url) or DEFAULT_OPENAI_URL


class AnthropicPlugin:
    """The Anthropic Messages API (optional extra ``deploysim[anthropic]``)."""

    name = "anthropic"
    default_url = "https://api.anthropic.com"

    def build(self, spec: ModelSpec, resources: ProviderResources) -> Provider:
        from deploysim.models.anthropic_provider import AnthropicProvider

        key = api_key(spec, resources, "ANTHROPIC_API_KEY", self.default_url)
        return AnthropicProvider(model=spec.model, base_url=spec.base_url, api_key=key)

    def is_local(self, spec: ModelSpec) -> bool:
        return is_loopback_url(spec.base_url)

    def endpoint(self, spec: ModelSpec) -> str:
        return strip_credentials(spec.base_url) or self.default_url


class EmbeddedPlugin:
    """SmolLM2-135M-Instruct served by xllamacpp on 127.0.0.1 (always local)."""

    name = "embedded"

    def build(self, spec: ModelSpec, resources: ProviderResources) -> Provider:
        from deploysim.models.embedded import EmbeddedProvider, EmbeddedServer

        if spec.base_url:
            raise ValueError("models: provider 'embedded' takes no base_url (use provider 'openai' for a "
                             "llama.cpp server you run yourself)")
        server = resources.embedded_server(spec)
        assert isinstance(server, EmbeddedServer)
        return EmbeddedProvider(server, owns_server=False, max_connections=spec.concurrency)

    def is_local(self, spec: ModelSpec) -> bool:
        return True

    def endpoint(self, spec: ModelSpec) -> str:
        return "embedded (127.0.0.1)"


OPENAI = OpenAIPlugin()
ANTHROPIC = AnthropicPlugin()
EMBEDDED = EmbeddedPlugin()
