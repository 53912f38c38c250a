"""What a grader reads: the request that was sent and the graded turn, tool calls and outputs.

Two views of one :class:`~deploysim.grade.base.GradeItem`:

* :func:`render_transcript` — plain text for LLM judges. The system prompt and tools shown are
  those of the request actually sent (:class:`~deploysim.records.RequestSettings`), not the
  log's original ones; the graded turn is marked off from the conversation before it; every
  tool call shows its arguments and every tool output its provenance (real / replayed /
  executed / simulated); reasoning the endpoint returned is shown in its own section. Every
  structural marker carries the judgment's nonce (``<<nonce:ASSISTANT>>``), so text inside a
  message cannot forge a section, a role label or the end of the graded response. Long
  transcripts are cut deterministically (the response has priority), so the same item always
  renders to the same text and the render budget is part of a grader's identity.
* :class:`TurnView` — the structured parts rule graders need (request text, final answer, tool
  calls paired with their outputs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from deploysim.grade.base import GradeItem
from deploysim.records import Completion, Message, ToolCall, ToolSpec
from deploysim.request_settings import LEADING_ROLES, sent_system_prompt

#: bump when the rendered layout changes: it is part of every judge's identity
RENDER_VERSION = 2
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


class Marks:
    """Structural markers of one rendering: ``<<nonce:LABEL detail>>`` (``<<LABEL detail>>``
    without a nonce, for previews)."""

    def __init__(self, nonce: str = "") -> None:
        self.prefix = f"<<{nonce}:" if nonce else "<<"

    def __call__(self, label: str, detail: str = "") -> str:
        return f"{self.prefix}{label}{' ' + detail if detail else ''}>>"


def _call_line(call: ToolCall, mark: Marks) -> str:
    return mark("TOOL CALL", f"{call.name} id={call.id}") + f"\n{call.arguments}"


def render_message(msg: Message, mark: Marks | None = None) -> str:
    """One message as a marked block."""
    mark = mark or Marks()
    if msg.role == "tool":
        origin = f" source={msg.provenance}" if msg.provenance else ""
        head = mark("TOOL OUTPUT", f"{msg.name or ''} id={msg.tool_call_id or '?'}{origin}".strip())
        return f"{head}\n{msg.content if msg.content else '(empty output)'}"
    parts: list[str] = []
    if msg.reasoning:
        parts.append(mark("REASONING", "not shown to the user") + f"\n{msg.reasoning}")
    if msg.content or not msg.tool_calls:
        parts.append(mark(msg.role.upper()) + f"\n{msg.content if msg.content else '(empty message)'}")
    parts.extend(_call_line(c, mark) for c in msg.tool_calls)
    return "\n".join(parts)


def _shown_tools(item: GradeItem) -> tuple[ToolSpec, ...]:
    return item.settings.tools if item.settings is not None else item.prefix.context.tools


def _shown_system(item: GradeItem) -> str | None:
    if item.settings is not None:
        return item.settings.system_prompt
    return sent_system_prompt(item.prefix.messages) or item.prefix.context.system_prompt


def _render_context(item: GradeItem, budget: int, mark: Marks) -> str:
    prefix = item.prefix
    head: list[str] = []
    if prefix.context.product_context:
        head.append(mark("PRODUCT CONTEXT") + f"\n{prefix.context.product_context}")
    tools = _shown_tools(item)
    if tools:
        listing = "; ".join(f"{t.name}: {t.description}" if t.description else t.name for t in tools)
        head.append(mark("TOOLS AVAILABLE") + "\n" + _cut_middle(listing, 2000))
    system = _shown_system(item)
    if system:
        head.append(mark("SYSTEM") + "\n" + _cut_middle(system, 3000))
    # the system text sent is shown once, above: leading system messages are not repeated
    body = list(prefix.messages)
    while body and body[0].role in LEADING_ROLES:
        body.pop(0)
    blocks = [render_message(m, mark) for m in body]
    header = "\n\n".join(head)
    remaining = budget - len(header)
    kept: list[str] = []
    for i, block in enumerate(reversed(blocks)):
        if i == 0:  # the sampled user message is always shown, cut if it must be
            block = _cut_middle(block, max(remaining, 400))
        elif len(block) + 2 > remaining:
            omitted = len(blocks) - i
            kept.append(mark("OMITTED", f"{omitted} earlier message{'s' if omitted != 1 else ''}"))
            break
        kept.append(block)
        remaining -= len(block) + 2
    return "\n\n".join(x for x in (header, *reversed(kept)) if x)


def render_transcript(item: GradeItem, *, max_chars: int = DEFAULT_MAX_CHARS, nonce: str = "") -> str:
    """The request sent and the graded turn as text of at most about ``max_chars`` characters."""
    mark = Marks(nonce)
    response = "\n\n".join(render_message(m, mark) for m in response_messages(item.completion))
    if item.truncated:
        response += "\n" + mark("NOTE", "the response was cut off by the length limit")
    response = _cut_middle(response, int(max_chars * RESPONSE_SHARE))
    context = _render_context(item, max_chars - len(response), mark)
    return (f"{mark('CONVERSATION BEFORE THE GRADED RESPONSE')}\n{context}\n\n"
            f"{mark('GRADED RESPONSE', 'the assistant turn being judged')}\n{response}\n"
            f"{mark('END OF GRADED RESPONSE')}")


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
            tools_available=tuple(t.name for t in _shown_tools(item)),
            product_context=prefix.context.product_context,
            language=prefix.context.language,
            prefix_tool_names=tuple(c.name for m in prefix.messages for c in m.tool_calls),
            prefix_text="\n".join(m.content for m in prefix.messages if m.content),
        )

    def tool_names(self) -> Sequence[str]:
        return [u.call.name for u in self.tool_uses]
