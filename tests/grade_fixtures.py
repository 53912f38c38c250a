"""Builders of grade items and a fake provider, shared by the grade tests."""

from __future__ import annotations

from collections.abc import Sequence

from deploysim.grade.base import GradeItem
from deploysim.models.base import Generation, ModelRequest, ProviderError
from deploysim.models.spec import SamplingParams
from deploysim.records import Completion, Message, Prefix, PrefixContext, ToolCall, ToolSpec, Usage


def prefix(request: str, *, earlier: Sequence[Message] = (), tools: Sequence[str] = (),
           context: str = "general_chat", deidentified: str = "deidentified", key: str = "c") -> Prefix:
    msgs = (*earlier, Message(role="user", content=request))
    specs = tuple(ToolSpec(name=t, description=f"the {t} tool") for t in tools)
    return Prefix(id=Prefix.make_id(key, len(msgs) - 1, msgs, specs), conversation_id=key,
                  turn_index=len(msgs) - 1, messages=msgs,
                  context=PrefixContext(product_context=context, tools=specs,
                                        deidentified=deidentified))  # type: ignore[arg-type]


def call(name: str, arguments: str = "{}", call_id: str = "call_1") -> Message:
    return Message(role="assistant", tool_calls=(ToolCall(id=call_id, name=name, arguments=arguments),))


def output(content: str, call_id: str = "call_1", name: str | None = None,
           provenance: str = "simulated") -> Message:
    return Message(role="tool", content=content, tool_call_id=call_id, name=name,
                   provenance=provenance)  # type: ignore[arg-type]


def completion(p: Prefix, answer: str, *, steps: Sequence[Message] = (), arm: str = "x_on_y",
               sample: int = 0) -> Completion:
    final = Message(role="assistant", content=answer)
    return Completion(id=Completion.make_id(p.id, arm, "spec-x", sample), prefix_id=p.id,
                      arm=arm, model="x", generator_hash="spec-x", sample_index=sample,  # type: ignore[arg-type]
                      message=final, transcript=(*steps, final))


def item(request: str, answer: str, *, steps: Sequence[Message] = (), tools: Sequence[str] = (),
         earlier: Sequence[Message] = ()) -> GradeItem:
    p = prefix(request, tools=tools, earlier=earlier)
    return GradeItem(prefix=p, completion=completion(p, answer, steps=steps))


class FakeProvider:
    """A provider answering from a script: strings become assistant messages, exceptions are raised."""

    def __init__(self, answers: Sequence[str | Exception], *, finish_reason: str = "stop",
                 usage: Usage | None = None) -> None:
        self.answers = list(answers)
        self.finish_reason = finish_reason
        self.usage = usage or Usage()
        self.calls: list[tuple[list[Message], SamplingParams]] = []

    async def generate(self, request: ModelRequest) -> Generation:
        self.calls.append((list(request.messages), request.params))
        answer = self.answers[(len(self.calls) - 1) % len(self.answers)]
        if isinstance(answer, Exception):
            raise answer
        return Generation(message=Message(role="assistant", content=answer), finish_reason=self.finish_reason,
                          usage=self.usage)

    async def aclose(self) -> None:
        return None


def provider_error(message: str = "HTTP 500 from judge") -> ProviderError:
    return ProviderError(message, retryable=False, status=500)


def managed(provider: object, max_attempts: int = 1) -> object:
    """``provider`` behind the engine's managed wrapper (one attempt), as the judge gets it."""
    from deploysim.engine.managed import EndpointLimits, ManagedProvider

    return ManagedProvider(provider, spec_hash="judge", limits=EndpointLimits(max_attempts=max_attempts))  # type: ignore[arg-type]
