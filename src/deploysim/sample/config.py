"""Configuration of prefix sampling (``[sample]``); semantics in docs/sources-and-sampling.md."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SampleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: number of prefixes to draw (uniform over eligible turns of the whole corpus); with
    #: ``quotas`` the total is the sum of the quotas instead
    n: int = Field(default=1000, gt=0)
    seed: int = 0
    #: metadata field to stratify by (``product_context``, ``language``, ``deployed_model``,
    #: ``source``, or a key of ``meta.extra``); proportional allocation unless ``quotas``
    stratify_by: str | None = None
    #: explicit prefixes per stratum (needs ``stratify_by``); strata not listed are not sampled
    quotas: dict[str, int] | None = None
    #: at most this many prefixes from one conversation
    cap_per_conversation: int | None = Field(default=None, gt=0)
    languages: list[str] | None = None
    contexts: list[str] | None = None
    #: keep conversations with at least / at most this many user messages
    min_turns: int | None = Field(default=None, ge=1)
    max_turns: int | None = Field(default=None, ge=1)
    #: skip turns whose prefix holds content that is not plain text (images, audio, files)
    text_only: bool = True
    #: a turn whose prefix would hold more messages than this is not eligible (counted as
    #: ``too_long`` in the sample report): bounds memory and storage on pathological logs
    max_prefix_messages: int = Field(default=2000, ge=2)

    @model_validator(mode="after")
    def _consistent(self) -> SampleConfig:
        if self.quotas is not None:
            if self.stratify_by is None:
                raise ValueError("quotas need stratify_by (the metadata field the quotas refer to)")
            bad = {k: v for k, v in self.quotas.items() if v < 0}
            if bad or not any(self.quotas.values()):
                raise ValueError("quotas must be non-negative and not all zero")
        if self.min_turns is not None and self.max_turns is not None and self.min_turns > self.max_turns:
            raise ValueError(f"min_turns ({self.min_turns}) is larger than max_turns ({self.max_turns})")
        return self

    @property
    def total(self) -> int:
        """Number of prefixes asked for."""
        return sum(self.quotas.values()) if self.quotas is not None else self.n
