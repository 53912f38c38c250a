"""Configuration of prefix sampling (``[sample]``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SampleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: number of prefixes to draw (uniform over eligible turns of the whole corpus)
    n: int = Field(default=1000, gt=0)
    seed: int = 0
    #: metadata field to stratify by (``product_context``, ``language``, or an ``extra`` key)
    stratify_by: str | None = None
    #: at most this many prefixes from one conversation
    cap_per_conversation: int | None = Field(default=None, gt=0)
    languages: list[str] | None = None
    contexts: list[str] | None = None
    min_turns: int | None = Field(default=None, ge=1)
    max_turns: int | None = Field(default=None, ge=1)
    #: skip turns whose content is not plain text (images, audio, files)
    text_only: bool = True
