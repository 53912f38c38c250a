"""What is sent for one (prefix, arm, sample): messages, tools, parameters, and its record.

The system prompt is, in order: the arm environment's prompt for the prefix's product context,
the model spec's own prompt for it, else the log's (the prefix's leading system/developer
messages, or ``context.system_prompt`` when the messages carry none). An arm or spec prompt
replaces the log's leading system/developer messages. Tools are the prefix context's tool
definitions unless the environment offers none. Sample ``i`` of a seeded spec uses seed + i,
so several samples per prefix are different draws yet reproducible.

:func:`deploysim.request_settings.settings_for` turns what was sent into the record a
completion references, so graders render exactly the request that produced the answer.
"""

from __future__ import annotations

from deploysim.arms import Environment
from deploysim.models.spec import ModelSpec, SamplingParams
from deploysim.records import Message, Prefix, ToolSpec
from deploysim.request_settings import LEADING_ROLES


def system_prompt_override(prefix: Prefix, env: Environment, spec: ModelSpec) -> str | None:
    ctx = prefix.context.product_context
    prompt = env.system_prompt_for(ctx)
    return prompt if prompt is not None else spec.system_prompt_for(ctx)


def build_messages(prefix: Prefix, env: Environment, spec: ModelSpec) -> tuple[Message, ...]:
    messages = prefix.messages
    prompt = system_prompt_override(prefix, env, spec)
    if prompt is not None:
        start = 0
        while start < len(messages) and messages[start].role in LEADING_ROLES:
            start += 1
        return (Message(role="system", content=prompt), *messages[start:])
    if prefix.context.system_prompt and not any(m.role in LEADING_ROLES for m in messages[:1]):
        return (Message(role="system", content=prefix.context.system_prompt), *messages)
    return messages


def tools_for(prefix: Prefix, env: Environment) -> tuple[ToolSpec, ...]:
    return prefix.context.tools if env.tools == "prefix" else ()


def params_for_sample(params: SamplingParams, sample_index: int) -> SamplingParams:
    if params.seed is None or sample_index == 0:
        return params
    return params.model_copy(update={"seed": params.seed + sample_index})
