"""Configuration of rate estimation (``[estimate]``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class EstimateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    confidence: float = Field(default=0.95, gt=0, lt=1)
    #: significance level of the Fisher and McNemar tests (the paper used 0.1, two-sided)
    alpha: float = Field(default=0.1, gt=0, lt=1)
    benjamini_hochberg: bool = False
    interval: Literal["wilson", "jeffreys", "clopper_pearson"] = "wilson"
