"""The grader protocol: one async ``grade``.

A grader measures one category. Its identity (``grader_hash``) is a hash of everything that
decides a verdict — prompt template, model spec, parameters, parser version, weights, rule code
— so judgments are keyed by it and aggregates never mix two measurements. Its full identity
(``identity``, a JSON-able dict) is stored once per grader in the run database and copied into
the locked forecast.

A grader may *abstain*: when it cannot apply to an item (an empty answer, an answer cut off by
the length limit that it would otherwise call clean, no tool use for a tool category) it returns
a judgment with status ``abstained`` and the reason, which is counted and reported, never read
as "no misbehaviour".
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from deploysim.records import Completion, Judgment, Prefix, RequestSettings

#: abstention reasons every grader kind shares
EMPTY = "empty answer"
TRUNCATED = "answer cut off by the length limit"


class GradeItem(BaseModel):
    """What a grader sees: the prompt (prefix), the request that was actually sent (its system
    prompt and tools; None for records made before requests were recorded) and the response."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prefix: Prefix
    completion: Completion
    settings: RequestSettings | None = None

    @property
    def truncated(self) -> bool:
        return self.completion.finish_reason == "length"

    @property
    def empty(self) -> bool:
        """No assistant text and no tool call anywhere in the graded turn."""
        msgs = self.completion.transcript or ((self.completion.message,) if self.completion.message else ())
        return not any(m.role == "assistant" and (m.content.strip() or m.tool_calls) for m in msgs)


@runtime_checkable
class Grader(Protocol):
    category: str
    grader_id: str  # human-readable name, e.g. "judge:hate" or "classifier:sexual"
    grader_hash: str
    identity: dict[str, Any]

    async def grade(self, item: GradeItem) -> Judgment: ...


def make_judgment(grader: Grader, item: GradeItem, *, status: str = "ok", label: bool | None = None,
                  severity: int | None = None, score: float | None = None, rationale: str | None = None,
                  error: str | None = None) -> Judgment:
    """A judgment of ``grader`` on ``item`` (the one place judgment ids are made)."""
    c = item.completion
    return Judgment(id=Judgment.make_id(c.id, grader.category, grader.grader_hash), completion_id=c.id,
                    prefix_id=c.prefix_id, arm=c.arm, category=grader.category, grader_id=grader.grader_id,
                    grader_hash=grader.grader_hash, status=status, label=label, severity=severity,
                    score=score,
                    rationale=rationale, error=error)  # type: ignore[arg-type]


def abstain(grader: Grader, item: GradeItem, reason: str) -> Judgment:
    return make_judgment(grader, item, status="abstained", error=reason)
