"""Configuration of the simulation stage (``[simulate]``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class SimulateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: name of the ``[models.NAME]`` entry for candidate X (X->Y arm); when no such entry
    #: exists the embedded offline model is used
    candidate: str = "candidate"
    #: name of the model for the Y->Y control arm (the incumbent); empty = no control arm
    control: str | None = None
    #: which simulated arms on the production pool this stage runs (None = all of them);
    #: arms of other pools run in the stage that fills their pool (challenge, validate)
    arms: list[str] | None = None
    #: total spend cap in USD across arms; the run stops cleanly before exceeding it
    budget_usd: float | None = Field(default=None, gt=0)
    #: global cap on requests in flight
    concurrency: int = Field(default=256, ge=1)
    #: agentic prefixes: at most this many tool-call rounds before giving up
    max_tool_steps: int = Field(default=8, ge=1)
    #: retry completions stored as ``error`` on resume
    retry_errors: bool = True
    #: answer repeated requests from the response cache instead of calling the model again
    cache: bool = True
    #: let two prefixes with identical text share one cached answer (off: each prefix is its own
    #: draw, as sampling at temperature > 0 requires)
    cache_across_prefixes: bool = False
    #: a folder holding a response cache shared across runs (default: the run's own store)
    cache_dir: Path | None = None
    #: completions written per store transaction
    write_batch: int = Field(default=256, ge=1)
    #: Batch API mode: seconds between polls of a submitted batch
    batch_poll_s: float = Field(default=30.0, gt=0)
    #: Batch API mode: requests per submitted batch (the API allows at most 50,000)
    batch_max_requests: int = Field(default=50_000, ge=1, le=50_000)
