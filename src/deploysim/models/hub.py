"""Opening model clients: the one way stages get a model to call.

:class:`ModelHub` holds the run's :class:`~deploysim.registry.Registry`, its
:class:`~deploysim.models.policy.SendPolicy` (required) and the process-level resources
providers share (the embedded server). ``open`` builds the provider through its plugin, puts it
behind the send-policy gate and wraps it in the engine's :class:`ManagedProvider` (limits,
retries, cache, budget). A stage opens its clients inside its own event loop and closes them
when it ends; the hub (and the embedded server it may have started) lives for the whole run, so
consecutive stages share one embedded server.
"""

from __future__ import annotations

from typing import Any

from deploysim.engine.budget import Budget
from deploysim.engine.ledger import SpendLedger
from deploysim.engine.managed import EndpointLimits, ManagedProvider
from deploysim.models.cache import ResponseCache
from deploysim.models.context_fit import ContextFitProvider
from deploysim.models.limiter import AdaptiveConcurrency
from deploysim.models.plugins import ProviderResources
from deploysim.models.policy import GatedProvider, SendPolicy
from deploysim.models.spec import ModelSpec
from deploysim.registry import Registry


class ModelHub:
    def __init__(self, registry: Registry, policy: SendPolicy, *,
                 resources: ProviderResources | None = None) -> None:
        self.registry = registry
        self.policy = policy
        self.resources = resources or ProviderResources()

    def is_local(self, spec: ModelSpec) -> bool:
        return bool(self.registry.provider(spec.provider).is_local(spec))

    def endpoint(self, spec: ModelSpec) -> str:
        return str(self.registry.provider(spec.provider).endpoint(spec))

    @staticmethod
    def endpoint_key(spec: ModelSpec) -> str:
        """Specs with the same key share one endpoint, hence one concurrency limiter."""
        return f"{spec.provider}|{spec.base_url or ''}"

    def gated(self, spec: ModelSpec) -> GatedProvider:
        """The bare provider for ``spec`` behind the send-policy gate."""
        plugin = self.registry.provider(spec.provider)
        inner = plugin.build(spec, self.resources)
        return GatedProvider(inner, self.policy, local=bool(plugin.is_local(spec)),
                             endpoint=str(plugin.endpoint(spec)))

    def open(self, spec: ModelSpec, *, cache: ResponseCache | None = None, budget: Budget | None = None,
             concurrency: AdaptiveConcurrency | None = None, ledger: SpendLedger | None = None,
             ) -> ManagedProvider:
        """A managed, policy-gated client for ``spec`` (close it with ``aclose``). The spec's
        context rule and spike-ins, if any, wrap the gated provider (inside the cache and the
        retries), so a shortened request still passes the gate. ``ledger`` records every attempt
        sent, for spend across invocations (engine/ledger.py)."""
        provider: Any = ContextFitProvider(self.gated(spec), spec.context_overflow)
        if spec.spike_ins:
            from deploysim.models.spikes import SpikeInProvider

            provider = SpikeInProvider(provider, spec.spike_ins)
        return ManagedProvider(provider, spec_hash=spec.spec_hash(),
                               limits=EndpointLimits.from_spec(spec),
                               prices=spec.prices, cache=cache, budget=budget, concurrency=concurrency,
                               ledger=ledger, owns_provider=True)

    def close(self) -> None:
        self.resources.close()

    def __enter__(self) -> ModelHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
