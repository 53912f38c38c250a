"""From a sampled prefix to the request the candidate sees, as in production.

System prompt: the model spec's prompt for the prefix's product context (or its ``default``)
replaces the system/developer messages the log started with; without one, the prefix keeps
its own (from its messages, or ``context.system_prompt`` when the messages carry none). Tools
are the prefix context's tool definitions. Sample ``i`` of a seeded spec uses seed + i, so
several samples per prefix are different draws yet reproducible.
"""

from __future__ import annotations

from deploysim.models.spec import ModelSpec, SamplingParams
from deploysim.records import Message, Prefix

LEADING_ROLES = ("system", "developer")


def build_messages(prefix: Prefix, spec: ModelSpec) -> tuple[Message, ...]:
    messages = prefix.messages
    prompt = spec.system_prompt_for(prefix.context.product_context)
    if prompt is not None:
        start = 0
        while start < len(messages) and messages[start].role in LEADING_ROLES:
            start += 1
        return (Message(role="system", content=prompt), *messages[start:])
    if prefix.context.system_prompt and not any(m.role in LEADING_ROLES for m in messages[:1]):
        return (Message(role="system", content=prefix.context.system_prompt), *messages)
    return messages


def params_for_sample(params: SamplingParams, sample_index: int) -> SamplingParams:
    if params.seed is None or sample_index == 0:
        return params
    return params.model_copy(update={"seed": params.seed + sample_index})
