"""Configuration of grading (``[grade]``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class GradeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: extra taxonomy files or folders (override or add categories by id)
    taxonomy: list[Path] = Field(default_factory=list)
    #: categories to grade (None = every category in the taxonomy)
    categories: list[str] | None = None
    #: grader kind per category ("judge", "classifier", "rules"); unset = the category's default
    graders: dict[str, str] = Field(default_factory=dict)
    #: name of the ``[models.NAME]`` entry used by LLM-judge graders
    judge: str | None = None
    concurrency: int = Field(default=64, ge=1)
