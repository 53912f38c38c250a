"""Build a provider from a :class:`ModelSpec`, and the engine wrapper around it.

API keys come from the environment only (``api_key_env``, or ``OPENAI_API_KEY`` /
``ANTHROPIC_API_KEY`` by default), never from the config file or the run store.
"""

from __future__ import annotations

import os

from deploysim.engine.budget import Budget
from deploysim.engine.managed import EndpointLimits, ManagedProvider
from deploysim.models.base import Provider
from deploysim.models.cache import ResponseCache
from deploysim.models.embedded import EmbeddedProvider, EmbeddedServer
from deploysim.models.limiter import AdaptiveConcurrency
from deploysim.models.openai_compat import DEFAULT_OPENAI_URL, OpenAICompatProvider
from deploysim.models.spec import ModelSpec

DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


def api_key_for(spec: ModelSpec) -> str | None:
    """The key from ``spec.api_key_env``; an explicitly named variable that is unset is an error."""
    if spec.api_key_env:
        key = os.environ.get(spec.api_key_env)
        if not key:
            raise ValueError(f"models: api_key_env = {spec.api_key_env!r} but that environment "
                             "variable is not set")
        return key
    env = DEFAULT_KEY_ENV.get(spec.provider)
    return os.environ.get(env) if env else None


def endpoint_key(spec: ModelSpec) -> str:
    """Specs with the same key share one endpoint, hence one concurrency limiter."""
    return f"{spec.provider}|{spec.base_url or ''}"


def build_provider(spec: ModelSpec, *, embedded: EmbeddedServer | None = None) -> Provider:
    """A bare provider for ``spec``. ``embedded``: a running server to share (else a new one
    is started and owned by the provider)."""
    if spec.provider == "embedded":
        if spec.base_url:
            raise ValueError("models: provider 'embedded' takes no base_url (use provider 'openai' "
                             "for a llama.cpp server you run yourself)")
        server = embedded or EmbeddedServer(slots=spec.slots, context_per_slot=spec.context_per_slot)
        return EmbeddedProvider(server, owns_server=embedded is None, max_connections=spec.concurrency)
    if spec.provider == "openai":
        return OpenAICompatProvider(base_url=spec.base_url or DEFAULT_OPENAI_URL, model=spec.model,
                                    api_key=api_key_for(spec), max_connections=spec.concurrency)
    if spec.provider == "anthropic":
        from deploysim.models.anthropic_provider import AnthropicProvider

        return AnthropicProvider(model=spec.model, base_url=spec.base_url, api_key=api_key_for(spec))
    raise ValueError(f"unknown provider {spec.provider!r}")


def manage(provider: Provider, spec: ModelSpec, *, cache: ResponseCache | None = None,
           budget: Budget | None = None, concurrency: AdaptiveConcurrency | None = None,
           owns_provider: bool = True) -> ManagedProvider:
    """Wrap ``provider`` with the spec's limits, prices and the shared cache/budget."""
    return ManagedProvider(provider, spec_hash=spec.spec_hash(), limits=EndpointLimits.from_spec(spec),
                           prices=spec.prices, cache=cache, budget=budget, concurrency=concurrency,
                           owns_provider=owns_provider)
