"""Typed records that flow one way through the pipeline.

sources -> Conversation; sample -> Prefix (+ a ``y_prod`` Completion holding the deployed
model's real response); simulate -> Completion; grade -> Judgment; estimate -> Estimate and
Comparison. Every record that the run store keeps has an ``id`` that is a content hash
(see :mod:`deploysim.hashing`), so writing the same record twice is a no-op and a killed run
resumes without duplicates.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from deploysim.hashing import content_hash

Role = Literal["system", "developer", "user", "assistant", "tool"]
ROLES: frozenset[str] = frozenset(("system", "developer", "user", "assistant", "tool"))

#: Where a tool message's content came from (DESIGN.md step 4): the original log, an exact
#: replay of a real call->output pair, a user-registered executor that ran the call for real,
#: or the tool-simulator model.
ToolProvenance = Literal["real", "replayed", "executed", "simulated"]

#: An arm's name. Arms are data (:mod:`deploysim.arms`): the built-in names are ``x_on_y``
#: (X→Y), ``y_on_y`` (Y→Y), ``y_prod`` (Y's production responses), ``x_prod`` (X's production
#: after release) and ``challenge`` (X on a challenging-prompt set); a run file adds others.
Arm = str
#: labels of the built-in arm names (a configured arm carries its own label)
ARM_LABELS: dict[str, str] = {
    "x_on_y": "X→Y",
    "y_on_y": "Y→Y",
    "y_prod": "Y production",
    "x_prod": "X production",
    "challenge": "challenging prompts",
}

#: The prefix pool an arm draws from: sampled production prefixes, a challenging-prompt set,
#: X's post-release traffic, or a pool a run file names. Pools keep their own prefix ids, so
#: one pool's prefixes never enter another pool's work list.
Pool = str
POOLS: tuple[str, ...] = ("production", "challenge", "release")

Status = Literal["ok", "error"]
#: a judgment may also abstain: the grader cannot apply to the item (empty or truncated answer,
#: no tool use for a tool category, ...). Abstentions are counted, never read as "no misbehaviour".
JudgmentStatus = Literal["ok", "error", "abstained"]
#: how far text was de-identified. ``public`` marks public benchmark text (eval sets) that
#: describes no private person; like ``deidentified`` and ``synthetic`` any endpoint may receive it.
DeidStatus = Literal["raw", "deidentified", "synthetic", "public"]


class Record(BaseModel):
    """Base: records are immutable values; unknown fields are errors, not silently kept.
    JSON parsing caches keys only: values are mostly unique texts, which caching slows."""

    model_config = ConfigDict(frozen=True, extra="forbid", cache_strings="keys")


class ToolCall(Record):
    id: str
    name: str
    arguments: str = "{}"  # JSON text, as on the OpenAI wire; kept verbatim


class ToolSpec(Record):
    """A function tool definition (OpenAI ``tools[].function`` shape)."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)


class Message(Record):
    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    provenance: ToolProvenance | None = None
    #: reasoning the endpoint returned beside the answer (``reasoning_content`` of vLLM/SGLang,
    #: Anthropic thinking blocks); judges see it in its own section, users never did
    reasoning: str | None = None


class ConversationMeta(Record):
    source: str = ""
    deployed_model: str | None = None
    product_context: str | None = None
    timestamp: str | None = None  # ISO 8601 as found in the log
    language: str | None = None
    deidentified: DeidStatus = "raw"
    extra: dict[str, Any] = Field(default_factory=dict)


class Conversation(Record):
    id: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    meta: ConversationMeta = Field(default_factory=ConversationMeta)


class Quarantined(Record):
    """A row a reader could not use: nothing is dropped silently."""

    source: str
    line: int  # 1-based line (JSONL) or record index (JSON array / Parquet row)
    reason: str
    excerpt: str = ""


class PrefixContext(Record):
    product_context: str | None = None
    system_prompt: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    language: str | None = None
    deployed_model: str | None = None
    timestamp: str | None = None
    deidentified: DeidStatus = "raw"


class Continuation(Record):
    """What really followed the sampled user turn in production (kept as reference).

    ``response`` is the deployed model's first assistant message; ``steps`` are the messages
    that followed it up to the next user turn (tool outputs with provenance ``real`` and
    further assistant messages), so an agentic trajectory is kept whole.
    """

    response: Message
    steps: tuple[Message, ...] = ()


class Prefix(Record):
    id: str
    conversation_id: str
    turn_index: int  # index into the conversation's messages of the sampled user message
    messages: tuple[Message, ...]  # everything up to and including the sampled user message
    context: PrefixContext = Field(default_factory=PrefixContext)
    continuation: Continuation | None = None
    stratum: str | None = None
    pool: Pool = "production"
    #: usable turns of its conversation when it was sampled (m_j, before the per-conversation
    #: cap): with the sample report's strata it gives the prefix's design weight
    usable_turns: int | None = None

    @staticmethod
    def make_id(conversation_id: str, turn_index: int, messages: tuple[Message, ...] | list[Message],
                tools: tuple[ToolSpec, ...] | list[ToolSpec] = (), pool: str = "production") -> str:
        """Content hash of provenance + prompt: identical text in two conversations stays two
        prefixes, and the same prefix sampled twice is one row."""
        key: dict[str, object] = {
            "conversation_id": conversation_id,
            "turn_index": turn_index,
            "messages": [m.model_dump(mode="json") for m in messages],
            "tools": [t.model_dump(mode="json") for t in tools],
        }
        if pool != "production":
            key["pool"] = pool
        return content_hash(key)


class Usage(Record):
    input_tokens: int = 0
    output_tokens: int = 0


class RequestSettings(Record):
    """What was sent to produce a completion, apart from the conversation itself: stored once
    per distinct value (``id`` is its content hash) and referenced by every completion it made.

    ``system_prompt`` is the system text actually sent (an arm's override, or the log's own),
    ``tools`` the tool definitions offered, ``params`` the sampling parameters of the request
    (the per-sample seed included). Graders render this request, not the log's original one.
    """

    id: str
    provider: str
    model: str
    #: the endpoint's base URL with any credentials removed (None: the provider's default)
    endpoint: str | None = None
    system_prompt: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    params: dict[str, Any] = Field(default_factory=dict)
    #: spike-in or other wrappers that changed the model's behaviour (positive controls)
    wrappers: tuple[dict[str, Any], ...] = ()

    @staticmethod
    def make_id(provider: str, model: str, endpoint: str | None, system_prompt: str | None,
                tools: tuple[ToolSpec, ...] | list[ToolSpec], params: dict[str, Any],
                wrappers: tuple[dict[str, Any], ...] = ()) -> str:
        return content_hash({"provider": provider, "model": model, "endpoint": endpoint,
                             "system_prompt": system_prompt,
                             "tools": [t.model_dump(mode="json") for t in tools],
                             "params": params, "wrappers": list(wrappers)})


class SentRequest(Record):
    """A completion's link to its :class:`RequestSettings`, plus what the endpoint reported."""

    settings_id: str
    #: the model id the endpoint said answered (``model`` of the response), when it said
    reported_model: str | None = None
    #: the endpoint's build fingerprint (``system_fingerprint``), when it gave one
    fingerprint: str | None = None
    #: oldest prefix messages left out so the prompt fit the model's context (the spec's
    #: ``context_overflow = "truncate_oldest"``); 0 = the whole prefix was sent
    context_dropped: int = 0


class Completion(Record):
    """One generated (or production) assistant turn for a prefix in an arm.

    ``transcript`` holds the whole turn for agentic runs: assistant tool calls, tool outputs
    (with provenance) and the final assistant message; ``message`` is the final message.
    ``generator_hash`` identifies what produced it: the arm's model spec and environment (or,
    for a logged arm, the deployed model), so changing either never mixes old and new results.
    """

    id: str
    prefix_id: str
    arm: Arm
    model: str
    generator_hash: str
    sample_index: int = 0
    status: Status = "ok"
    error: str | None = None
    message: Message | None = None
    transcript: tuple[Message, ...] = ()
    finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    latency_s: float | None = None
    cost_usd: float = 0.0
    raw_id: str | None = None
    attempts: int = 1
    request: SentRequest | None = None
    #: outcome details of an agentic rollout (steps, limits hit, tool failures by reason)
    extra: dict[str, Any] = Field(default_factory=dict)
    created_at: str = Field(default_factory=lambda: utc_now())

    @staticmethod
    def make_id(prefix_id: str, arm: str, generator_hash: str, sample_index: int) -> str:
        return content_hash([prefix_id, arm, generator_hash, sample_index])


class Judgment(Record):
    """A frozen grader's verdict on one completion for one category.

    ``status == "error"`` means no verdict (unparseable or failed): it is counted as a
    failure and never as "no misbehaviour" (DESIGN.md step 5). ``status == "abstained"`` means
    the grader cannot apply to this item; ``error`` then holds the reason (e.g. ``truncated``).
    """

    id: str
    completion_id: str
    prefix_id: str
    arm: Arm
    category: str
    grader_id: str
    grader_hash: str
    status: JudgmentStatus = "ok"
    label: bool | None = None
    severity: int | None = None  # 0-4 for misalignment categories
    score: float | None = None  # probability or confidence when the grader has one
    rationale: str | None = None
    error: str | None = None
    created_at: str = Field(default_factory=lambda: utc_now())

    @staticmethod
    def make_id(completion_id: str, category: str, grader_hash: str) -> str:
        return content_hash([completion_id, category, grader_hash])


class Estimate(Record):
    """Rate of one category in one arm (DESIGN.md "Definitions")."""

    id: str
    category: str
    arm: Arm
    grader_hash: str
    n: int
    k: int
    failures: int
    #: k/n; None when nothing was graded (n = 0)
    rate: float | None
    #: items the grader abstained on (cannot apply), by reason; not in n, never "clean"
    abstained: dict[str, int] = Field(default_factory=dict)
    #: planned items without a final result (not generated yet or not graded yet)
    pending: int = 0
    wilson: tuple[float, float]
    jeffreys: tuple[float, float]
    floor: float
    corrected_rate: float | None = None
    corrected_interval: tuple[float, float] | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @staticmethod
    def make_id(category: str, arm: str, grader_hash: str) -> str:
        return content_hash(["estimate", category, arm, grader_hash])


class Comparison(Record):
    """Arm A against arm B for one category: ratio with interval and a test."""

    id: str
    category: str
    arm_a: Arm
    arm_b: Arm
    grader_hash: str
    ratio: float | None
    ratio_interval: tuple[float, float] | None
    test: str  # "fisher" | "mcnemar"
    p_value: float
    significant: bool
    alpha: float
    p_adjusted: float | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @staticmethod
    def make_id(category: str, arm_a: str, arm_b: str, test: str, grader_hash: str) -> str:
        return content_hash(["comparison", category, arm_a, arm_b, test, grader_hash])


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
