"""Configuration of forecasting (``[forecast]``)."""

from __future__ import annotations

from pathlib import Path

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
    interval: float = Field(default=0.9, gt=0, lt=1)
