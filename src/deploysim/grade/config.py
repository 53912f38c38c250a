"""Configuration of grading (``[grade]``).

Which grader measures a category is decided per category, in this order: an entry in
``graders`` (``judge`` / ``classifier`` / ``rules``, or ``offline`` for the category file's
offline grader); else ``mode``: ``offline`` uses every category's offline grader, ``judge``
the LLM judge for every category, ``auto`` the category's default grader (normally the judge)
when ``judge`` names a model and its offline grader when it does not. So a run with no model
endpoint grades every category offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from deploysim.records import Arm

#: a grader kind name, or "offline" for the category file's offline grader
GraderSetting = str


class GradeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: extra taxonomy files or folders (override or add categories by id)
    taxonomy: list[Path] = Field(default_factory=list)
    #: categories to grade (None = every category in the taxonomy)
    categories: list[str] | None = None
    #: grader per category: "judge", "classifier", "rules" or "offline"; unset = see ``mode``
    graders: dict[str, GraderSetting] = Field(default_factory=dict)
    #: "auto" (judge when one is configured, else offline), "offline" or "judge"
    mode: Literal["auto", "offline", "judge"] = "auto"
    #: name of the ``[models.NAME]`` entry used by LLM-judge graders
    judge: str | None = None
    #: ``per_category``: one judge call per (completion, category); ``multi``: one structured call
    #: per completion for every judged category (its own grader identity; see ``deploysim plan``)
    judge_mode: Literal["per_category", "multi"] = "per_category"
    #: arms to grade (None = every arm present in the run)
    arms: list[Arm] | None = None
    #: jobs in flight (judge requests, classifier batches, rule batches)
    concurrency: int = Field(default=64, ge=1)
    #: judgments written per store transaction
    write_batch: int = Field(default=256, ge=1)
    #: characters of transcript an LLM judge sees (part of the judge's identity)
    judge_max_chars: int = Field(default=24_000, ge=2_000)
    #: re-grade judgments stored as ``error`` on resume
    retry_errors: bool = True
    #: answer repeated judge requests from the response cache
    cache: bool = True
    #: spend cap in USD for judge calls; the stage stops cleanly before exceeding it
    budget_usd: float | None = Field(default=None, gt=0)
