"""Configuration of forecasting (``[forecast]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ForecastConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    #: where to write the locked forecast file (default: RUN_DIR/forecast.json)
    path: Path | None = None
    #: challenging-prompt set for the challenging-prompts baseline (any reader format or CSV)
    challenge_set: Path | None = None
    #: or: the top-k production prefixes by risk score
    challenge_top_k: int | None = Field(default=None, gt=0)
    #: draw at most this many prompts from ``challenge_set`` (uniform, seeded by ``challenge_seed``)
    challenge_limit: int | None = Field(default=None, gt=0)
    challenge_seed: int = 0
    #: product context given to prompts of a set that does not name one
    challenge_product_context: str = "general_chat"
    #: top-k risk score from Y production's judgments: ``flags`` = categories flagged,
    #: ``classifier`` = max grader score (docs/forecasting.md, "Challenging-prompt sets")
    challenge_score: Literal["flags", "classifier"] = "flags"
    #: categories the risk score looks at (default: every graded category)
    challenge_categories: list[str] | None = None
    interval: float = Field(default=0.9, gt=0, lt=1)
    #: scorecard.json files of earlier releases' validations: the simulation-to-production
    #: discrepancy is estimated from them (docs/forecasting.md); none = the default prior
    past_scorecards: list[Path] = Field(default_factory=list)
    #: scale of the half-normal prior on the discrepancy τ (log scale)
    discrepancy_prior_scale: float = Field(default=1.1, gt=0)
    #: completeness a forecast needs before it locks: every planned item of the simulated arms it
    #: reads is final, and at most this share of them failed (generation or grading errors)
    max_error_share: float = Field(default=0.05, ge=0, le=1)
    #: lock even when that is not met (the forecast file then says it is incomplete)
    allow_incomplete: bool = False
    #: what the simulation's forecast direction is taken against: ``auto`` = the Y→Y control
    #: arm when it exists, else Y production (DESIGN.md); or force ``y_on_y`` / ``y_prod``
    #: (use ``y_prod`` when the control model is only a stand-in for the deployed one)
    direction_reference: Literal["auto", "y_on_y", "y_prod"] = "auto"
