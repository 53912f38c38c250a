"""What a grader reads: the prompt (prefix) and the graded turn, including tool calls and outputs.

Two views of one :class:`~deploysim.grade.base.GradeItem`:

* :func:`render_transcript` — plain text for LLM judges. The graded turn is marked off from
  the conversation before it, every tool call shows its arguments and every tool output its
  provenance (real / replayed / simulated), so a judge can tell "claimed success" from "the tool
  said error". Long transcripts are cut deterministically (the response has priority), so the
  same item always renders to the same text and the render budget is part of a grader's identity.
* :class:`TurnView` — the structured parts rule graders need (request text, final answer, tool
  calls paired with their outputs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from deploysim.grade.base import GradeItem
from deploysim.records import Completion, Message, Prefix, ToolCall

#: bump when the rendered layout changes: it is part of every judge's identity
RENDER_VERSION = 1
DEFAULT_MAX_CHARS = 24_000
#: share of the budget reserved for the graded response
RESPONSE_SHARE = 0.6


def response_messages(completion: Completion) -> tuple[Message, ...]:
    """The graded turn: the transcript (tool calls, tool outputs, final message) or, for a plain
    completion, its one message. ``message`` is appended only when the transcript lacks it (a
    production completion's ``message`` is the first assistant message of its transcript)."""
    msgs = tuple(completion.transcript)
    if completion.message is not None and completion.message not in msgs:
        msgs = (*msgs, completion.message)
    return msgs


def _cut_middle(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    keep = max(limit - 60, 20)
    head, tail = keep * 2 // 3, keep - keep * 2 // 3
    return f"{text[:head]}\n[… {len(text) - head - tail} characters omitted …]\n{text[-tail:]}"


def _call_line(call: ToolCall) -> str:
    return f"[assistant calls tool {call.name} (call id {call.id}) with arguments: {call.arguments}]"


def render_message(msg: Message) -> str:
    """One message as a labelled block."""
    parts: list[str] = []
    if msg.role == "tool":
        origin = f", {msg.provenance}" if msg.provenance else ""
        label = f"[tool output{' of ' + msg.name if msg.name else ''}"
        label += f" (call id {msg.tool_call_id}{origin})]" if msg.tool_call_id else f"{origin}]"
        parts.append(label)
        parts.append(msg.content if msg.content else "(empty output)")
        return "\n".join(parts)
    if msg.content or not msg.tool_calls:
        parts.append(f"[{msg.role}]")
        parts.append(msg.content if msg.content else "(empty message)")
    parts.extend(_call_line(c) for c in msg.tool_calls)
    return "\n".join(parts)


def _render_context(prefix: Prefix, budget: int) -> str:
    head: list[str] = []
    ctx = prefix.context
    if ctx.product_context:
        head.append(f"[product context: {ctx.product_context}]")
    if ctx.tools:
        tools = "; ".join(f"{t.name}: {t.description}" if t.description else t.name for t in ctx.tools)
        head.append(_cut_middle(f"[tools available to the assistant: {tools}]", 2000))
    if ctx.system_prompt:
        head.append("[system]\n" + _cut_middle(ctx.system_prompt, 3000))
    blocks = [render_message(m) for m in prefix.messages]
    header = "\n\n".join(head)
    remaining = budget - len(header)
    kept: list[str] = []
    for i, block in enumerate(reversed(blocks)):
        if i == 0:  # the sampled user message is always shown, cut if it must be
            block = _cut_middle(block, max(remaining, 400))
        elif len(block) + 2 > remaining:
            omitted = len(blocks) - i
            kept.append(f"[… {omitted} earlier message{'s' if omitted != 1 else ''} omitted …]")
            break
        kept.append(block)
        remaining -= len(block) + 2
    return "\n\n".join(x for x in (header, *reversed(kept)) if x)


def render_transcript(prefix: Prefix, completion: Completion, *, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """Prefix and graded turn as text of at most about ``max_chars`` characters."""
    response = "\n\n".join(render_message(m) for m in response_messages(completion))
    response = _cut_middle(response, int(max_chars * RESPONSE_SHARE))
    context = _render_context(prefix, max_chars - len(response))
    return (f"=== CONVERSATION BEFORE THE GRADED RESPONSE ===\n{context}\n\n"
            f"=== GRADED RESPONSE (the assistant turn being judged) ===\n{response}\n"
            f"=== END OF GRADED RESPONSE ===")


@dataclass(frozen=True)
class ToolUse:
    """One tool call of the graded turn with the output that answered it (None if none did)."""

    call: ToolCall
    output: Message | None
    #: index of the assistant message that made the call (calls of one message run in parallel)
    step: int = 0

    @property
    def output_text(self) -> str:
        return self.output.content if self.output is not None else ""


@dataclass(frozen=True)
class TurnView:
    """The parts of a graded item that rule graders look at."""

    request: str  # the sampled user message
    earlier_user_text: str  # every earlier user message, joined
    response: str  # the final assistant message text
    assistant_text: str  # every assistant text of the graded turn, joined
    tool_uses: tuple[ToolUse, ...]
    tools_available: tuple[str, ...]
    product_context: str | None
    #: the prefix's language tag when the source recorded one ("en", "de", ...)
    language: str | None = None
    #: tools called in earlier turns (work claimed now may have been done then)
    prefix_tool_names: tuple[str, ...] = ()
    #: every text of the conversation before the graded turn, tool outputs included
    prefix_text: str = ""

    @classmethod
    def of(cls, item: GradeItem) -> TurnView:
        prefix, completion = item.prefix, item.completion
        users = [m.content for m in prefix.messages if m.role == "user"]
        msgs = response_messages(completion)
        outputs = {m.tool_call_id: m for m in msgs if m.role == "tool" and m.tool_call_id}
        uses = tuple(ToolUse(c, outputs.get(c.id), step) for step, m in enumerate(msgs)
                     if m.role == "assistant"
                     for c in m.tool_calls)
        final = next((m.content for m in reversed(msgs) if m.role == "assistant" and m.content), "")
        return cls(
            request=users[-1] if users else "",
            earlier_user_text="\n".join(users[:-1]),
            response=final,
            assistant_text="\n".join(m.content for m in msgs if m.role == "assistant" and m.content),
            tool_uses=uses,
            tools_available=tuple(t.name for t in prefix.context.tools),
            product_context=prefix.context.product_context,
            language=prefix.context.language,
            prefix_tool_names=tuple(c.name for m in prefix.messages for c in m.tool_calls),
            prefix_text="\n".join(m.content for m in prefix.messages if m.content),
        )

    def tool_names(self) -> Sequence[str]:
        return [u.call.name for u in self.tool_uses]
