"""Building :class:`~deploysim.records.RequestSettings`: what a completion's request carried.

Shared by every stage that makes or stores completions (simulate, sample for the logged
production responses, the release window), so the record is made one way.
"""

from __future__ import annotations

from deploysim.models.spec import ModelSpec, SamplingParams
from deploysim.records import Message, Prefix, RequestSettings, ToolSpec

LEADING_ROLES = ("system", "developer")


def sent_system_prompt(messages: tuple[Message, ...]) -> str | None:
    """The system text a request carried: its leading system/developer messages, joined."""
    lead = []
    for m in messages:
        if m.role not in LEADING_ROLES:
            break
        lead.append(m.content)
    return "\n\n".join(lead) if lead else None


def settings_for(spec: ModelSpec, endpoint: str | None, messages: tuple[Message, ...],
                 tools: tuple[ToolSpec, ...], params: SamplingParams,
                 wrappers: tuple[dict[str, object], ...] = ()) -> RequestSettings:
    system = sent_system_prompt(messages)
    dumped = params.model_dump(mode="json", exclude_defaults=True)
    return RequestSettings(
        id=RequestSettings.make_id(spec.provider, spec.model, endpoint, system, tools, dumped, wrappers),
        provider=spec.provider, model=spec.model, endpoint=endpoint, system_prompt=system, tools=tools,
        params=dumped, wrappers=wrappers)


def logged_settings(prefix: Prefix, model: str) -> RequestSettings:
    """The request a logged (production) response answered: the log's own system prompt and
    tools; the deployed model's sampling parameters are unknown."""
    system = sent_system_prompt(prefix.messages) or prefix.context.system_prompt
    tools = prefix.context.tools
    return RequestSettings(id=RequestSettings.make_id("log", model, None, system, tools, {}),
                           provider="log", model=model, system_prompt=system, tools=tools)
