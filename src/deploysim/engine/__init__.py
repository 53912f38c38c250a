"""deploysim.engine: the local asyncio executor.

``ManagedProvider`` wraps any provider with limits, retries, timeouts, cache and cost
accounting; ``run_stream`` streams work through an async function into batched sinks.
"""

from deploysim.engine.budget import Budget, BudgetExhausted
from deploysim.engine.managed import EndpointLimits, EndpointStats, ManagedProvider, Outcome
from deploysim.engine.progress import StreamProgress
from deploysim.engine.runner import StreamStats, run_stream

__all__ = ["Budget", "BudgetExhausted", "EndpointLimits", "EndpointStats", "ManagedProvider", "Outcome",
           "StreamProgress", "StreamStats", "run_stream"]
