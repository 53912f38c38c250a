"""Prefixes longer than the model's context: the ``context_overflow`` rule.

Endpoints refuse such prompts with a 400; ``too_long`` makes that a final error with its own
reason, ``truncate_oldest`` drops whole oldest turns (never splitting a tool call from its
result, never the system prompt or the last user turn) and records how many messages went.
The last test runs the real embedded llama.cpp server with a 512-token context.
"""

from __future__ import annotations

import pytest

from deploysim.models.base import Generation, ModelRequest, ProviderError
from deploysim.models.context_fit import (
    ContextFitProvider,
    drop_oldest,
    is_context_overflow,
    overflow_ratio,
)
from deploysim.models.spec import ModelSpec, SamplingParams
from deploysim.models.wire import status_error
from deploysim.records import Message, ToolCall

LLAMA = (b'{"error":{"code":400,"message":"request (1231 tokens) exceeds the available context size '
         b'(512 tokens), try increasing it","type":"exceed_context_size_error"}}')
VLLM = (b'{"object":"error","message":"This model\'s maximum context length is 4096 tokens. However, you '
        b'requested 5000 tokens (4000 in the messages, 1000 in the completion).","type":"BadRequestError",'
        b'"code":400}')
OPENAI = (b'{"error":{"message":"Your input exceeds the context window of this model.",'
          b'"type":"invalid_request_error","code":"context_length_exceeded"}}')
OTHER_400 = b'{"error":{"message":"Invalid value for temperature","type":"invalid_request_error"}}'


def conversation(turns: int, size: int = 400) -> tuple[Message, ...]:
    """system, then ``turns`` user/assistant turns (the second with a tool call and result),
    then the final user message."""
    out = [Message(role="system", content="be helpful")]
    for t in range(turns):
        out.append(Message(role="user", content=f"q{t} " + "x" * size))
        if t == 1:
            out.append(Message(role="assistant", content="", tool_calls=(ToolCall(id="c1", name="f"),)))
            out.append(Message(role="tool", content="r" * size, tool_call_id="c1"))
        out.append(Message(role="assistant", content=f"a{t} " + "y" * size))
    out.append(Message(role="user", content="final question"))
    return tuple(out)


def test_overflow_is_recognised_from_each_endpoint_dialect_and_nothing_else() -> None:
    for body in (LLAMA, VLLM, OPENAI):
        assert is_context_overflow(status_error(400, body, {})), body
    assert not is_context_overflow(status_error(400, OTHER_400, {}))
    assert not is_context_overflow(status_error(500, LLAMA, {}))  # a 5xx is the server's problem
    assert overflow_ratio(status_error(400, LLAMA, {})) == pytest.approx(512 / 1231)
    assert overflow_ratio(status_error(400, VLLM, {})) == pytest.approx(4096 / 5000)
    assert overflow_ratio(status_error(400, OPENAI, {})) is None


def test_drop_oldest_keeps_system_and_last_turn_and_tool_pairs() -> None:
    msgs = conversation(4)
    one = drop_oldest(msgs, None)
    assert one is not None and one[0].role == "system" and one[1].content.startswith("q1")
    assert one[-1].content == "final question"
    # the ratio form drops as many turns as needed in one step
    half = drop_oldest(msgs, 0.5)
    assert half is not None and len(half) < len(one)
    body_chars = sum(len(m.content) for m in half[1:])
    assert body_chars <= 0.5 * sum(len(m.content) for m in msgs[1:])
    # a tool result never survives without the call that asked for it
    for cut in (one, half):
        ids = {c.id for m in cut for c in m.tool_calls}
        assert all(m.tool_call_id in ids for m in cut if m.role == "tool")
    # only the system prompt and the last user turn left: nothing more can go
    last = drop_oldest(msgs, 0.0)
    assert last == (msgs[0], msgs[-1])
    assert drop_oldest(last, None) is None


class Tight:
    """An endpoint with a context of ``limit`` characters; records what it was sent."""

    def __init__(self, limit: int, body: bytes = LLAMA) -> None:
        self.limit, self.body, self.sent = limit, body, []  # type: list[tuple[Message, ...]]

    async def generate(self, request: ModelRequest) -> Generation:
        self.sent.append(request.messages)
        if sum(len(m.content) for m in request.messages) > self.limit:
            raise status_error(400, self.body, {})
        return Generation(message=Message(role="assistant", content="ok"))

    async def aclose(self) -> None:
        return None


def request(msgs: tuple[Message, ...]) -> ModelRequest:
    return ModelRequest(messages=msgs, tools=(), params=SamplingParams(), clearance="synthetic")


async def test_too_long_rule_is_a_final_counted_error() -> None:
    inner = Tight(500)
    with pytest.raises(ProviderError) as err:
        await ContextFitProvider(inner, "too_long").generate(request(conversation(4)))
    assert str(err.value).startswith("too long:") and not err.value.retryable
    assert len(inner.sent) == 1  # no second try


@pytest.mark.parametrize("body", [LLAMA, OPENAI])
async def test_truncate_oldest_sends_a_shorter_prefix_and_says_how_much_went(body: bytes) -> None:
    msgs = conversation(6)
    inner = Tight(1500, body)
    gen = await ContextFitProvider(inner, "truncate_oldest").generate(request(msgs))
    assert gen.message.content == "ok"
    sent = inner.sent[-1]
    assert sent[0] == msgs[0] and sent[-1] == msgs[-1] and sum(len(m.content) for m in sent) <= 1500
    assert gen.context_dropped == len(msgs) - len(sent) > 0
    # the prompt that fits is not needlessly short: at most one more turn than needed went
    assert len(inner.sent) <= 7


async def test_truncate_oldest_gives_up_when_the_last_turn_alone_is_too_long() -> None:
    msgs = (Message(role="system", content="s"), Message(role="user", content="z" * 5000))
    with pytest.raises(ProviderError, match=r"^too long:"):
        await ContextFitProvider(Tight(1000), "truncate_oldest").generate(request(msgs))


async def test_other_errors_pass_through_untouched() -> None:
    inner = Tight(10, OTHER_400)
    with pytest.raises(ProviderError) as err:
        await ContextFitProvider(inner, "truncate_oldest").generate(request(conversation(2)))
    assert "temperature" in str(err.value) and len(inner.sent) == 1


def test_rule_joins_the_spec_identity_and_request_record_only_when_not_default() -> None:
    base = ModelSpec(provider="openai", model="m")
    cut = ModelSpec(provider="openai", model="m", context_overflow="truncate_oldest")
    assert base.spec_hash() == "3f87e54c436cd2163be6a338ecc345a6"  # unchanged for existing runs
    assert cut.spec_hash() != base.spec_hash()
    assert base.wrapper_records() == ()
    assert cut.wrapper_records() == ({"context_overflow": "truncate_oldest"},)


@pytest.mark.embedded_model
async def test_embedded_server_with_a_small_context_under_both_rules() -> None:
    from deploysim.models.embedded import EmbeddedProvider, EmbeddedServer

    msgs = conversation(5, size=300)
    with EmbeddedServer(slots=1, context_per_slot=512, threads=1) as server:
        for rule in ("too_long", "truncate_oldest"):
            provider = ContextFitProvider(EmbeddedProvider(server), rule)  # type: ignore[arg-type]
            req = ModelRequest(messages=msgs, tools=(), params=SamplingParams(max_tokens=4, temperature=0.0),
                               clearance="synthetic")
            if rule == "too_long":
                with pytest.raises(ProviderError, match=r"^too long:.*exceeds the available context"):
                    await provider.generate(req)
            else:
                gen = await provider.generate(req)
                assert gen.context_dropped > 0 and gen.usage.input_tokens <= 512
            await provider.aclose()
