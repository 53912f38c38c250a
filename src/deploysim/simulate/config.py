"""Configuration of the simulation stage (``[simulate]``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SimulateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: name of the ``[models.NAME]`` entry for candidate X (X->Y arm)
    candidate: str = "candidate"
    #: name of the model for the Y->Y control arm (the incumbent); empty = no control arm
    control: str | None = None
    #: total spend cap in USD across arms; the run stops cleanly before exceeding it
    budget_usd: float | None = Field(default=None, gt=0)
    #: global cap on requests in flight
    concurrency: int = Field(default=256, ge=1)
    #: agentic prefixes: at most this many tool-call rounds before giving up
    max_tool_steps: int = Field(default=8, ge=1)
    #: retry completions stored as ``error`` on resume
    retry_errors: bool = True
