"""Configuration of rate estimation (``[estimate]``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CompareSpec(BaseModel):
    """One comparison of two arms: ``mcnemar`` (paired, same prefixes) or ``fisher`` (independent)."""

    model_config = ConfigDict(extra="forbid")

    a: str
    b: str
    test: Literal["mcnemar", "fisher"]


class EstimateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: level of the rate intervals (rate-ratio intervals use 1 − alpha, the level of their test)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    #: significance level of the Fisher and McNemar tests (the paper used 0.1, two-sided)
    alpha: float = Field(default=0.1, gt=0, lt=1)
    #: Benjamini–Hochberg across categories within each comparison family (on by default: with
    #: 19 categories and nothing changed, unadjusted tests at α = 0.1 flag at least one 71–83% of the time)
    benjamini_hochberg: bool = True
    #: interval shown as "the" CI; Wilson and Jeffreys are always stored, Clopper–Pearson on request
    interval: Literal["wilson", "jeffreys", "clopper_pearson"] = "wilson"
    #: McNemar variant on the discordant pairs: mid-p (default; near-nominal size) or exact
    mcnemar: Literal["midp", "exact"] = "midp"
    #: Monte-Carlo draws for the Rogan–Gladen interval (seeded by ``seed``)
    correction_draws: int = Field(default=20_000, ge=1000)
    seed: int = 0
    #: category -> grader hash to use when the store holds judgments of several graders for it
    grader_hashes: dict[str, str] = Field(default_factory=dict)
    #: comparisons to make; None = each simulated arm on production prefixes against the control
    #: arm (McNemar) and against the incumbent's production (Fisher)
    compare: list[CompareSpec] | None = None
