"""The grader protocol: one async ``grade``.

A grader measures one category. Its identity (``grader_hash``) is a hash of everything that
defines the measurement — prompt template, model spec, parameters, parser version, weights —
so judgments are keyed by it and aggregates never mix two measurements.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from deploysim.records import Completion, Judgment, Prefix


class GradeItem(BaseModel):
    """What a grader sees: the prompt (prefix) and the response to judge (completion)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prefix: Prefix
    completion: Completion


@runtime_checkable
class Grader(Protocol):
    category: str
    grader_id: str  # human-readable name, e.g. "judge:hate" or "classifier:sexual"
    grader_hash: str

    async def grade(self, item: GradeItem) -> Judgment: ...
