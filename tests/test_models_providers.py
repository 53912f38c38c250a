"""Providers: the Anthropic mapping (both ways, against a fake Messages endpoint), the
OpenAI-compatible provider's auth, and building providers from specs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web

from deploysim.models.anthropic_provider import AnthropicProvider, from_anthropic, request_body, to_anthropic
from deploysim.models.base import ModelRequest, ProviderError
from deploysim.models.openai_compat import OpenAICompatProvider
from deploysim.models.plugins import (
    ANTHROPIC,
    EMBEDDED,
    OPENAI,
    ProviderResources,
    api_key,
    strip_credentials,
)
from deploysim.models.spec import ModelSpec, SamplingParams
from deploysim.records import Message, ToolCall, ToolSpec


@pytest.fixture
async def aiohttp_server_factory() -> AsyncIterator[Callable[[web.RouteDef], Awaitable[str]]]:
    """Serve one route on 127.0.0.1 for the test; yields a function returning the base URL."""
    runners: list[web.AppRunner] = []

    async def serve(route: web.RouteDef) -> str:
        app = web.Application()
        app.add_routes([route])
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/v1" if route.path.startswith("/v1/chat") else f"http://127.0.0.1:{port}"

    yield serve
    for r in runners:
        await r.cleanup()


def req(messages: list[Message], params: SamplingParams) -> ModelRequest:
    return ModelRequest(messages=tuple(messages), tools=(), params=params, clearance="public")


CONVO = [
    Message(role="system", content="Be brief."),
    Message(role="user", content="Weather in Oslo and Rome?"),
    Message(role="assistant", content="Checking.", tool_calls=(
        ToolCall(id="tu_1", name="weather", arguments='{"city": "Oslo"}'),
        ToolCall(id="tu_2", name="weather", arguments='{"city": "Rome"}'))),
    Message(role="tool", content="cold", tool_call_id="tu_1"),
    Message(role="tool", content="warm", tool_call_id="tu_2"),
]


def test_messages_map_to_anthropic_blocks() -> None:
    system, msgs = to_anthropic(CONVO)
    assert system == "Be brief."
    assert msgs[1] == {"role": "assistant", "content": [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "tu_1", "name": "weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "tu_2", "name": "weather", "input": {"city": "Rome"}}]}
    assert msgs[2] == {"role": "user", "content": [  # consecutive results merged into one turn
        {"type": "tool_result", "tool_use_id": "tu_1", "content": "cold"},
        {"type": "tool_result", "tool_use_id": "tu_2", "content": "warm"}]}


def test_request_body_maps_params_tools_and_json_schema() -> None:
    schema = {"type": "object", "properties": {"label": {"type": "boolean"}}, "required": ["label"]}
    body = request_body("claude", CONVO[:2], [ToolSpec(name="weather", parameters={"type": "object"})],
                        SamplingParams(temperature=0.0, stop=["##"], extra={
                            "response_format": {"type": "json_schema", "json_schema": {"schema": schema}},
                            "logprobs": True}))
    assert body["max_tokens"] == 1024 and body["stop_sequences"] == ["##"] and "logprobs" not in body
    assert [t["name"] for t in body["tools"]] == ["weather", "structured_response"]
    assert body["tool_choice"] == {"type": "tool", "name": "structured_response"}
    assert body["tools"][1]["input_schema"] == schema


def test_responses_map_back_to_tool_calls_and_text() -> None:
    use = {"type": "tool_use", "id": "tu_9", "name": "weather", "input": {"city": "Oslo"}}
    usage = {"input_tokens": 9, "output_tokens": 4}
    g = from_anthropic({"id": "msg_1", "stop_reason": "tool_use", "usage": usage,
                        "content": [{"type": "text", "text": "Let me look."}, use]})
    assert g.message.content == "Let me look." and g.finish_reason == "tool_calls"
    assert g.message.tool_calls == (ToolCall(id="tu_9", name="weather", arguments='{"city":"Oslo"}'),)
    structured = from_anthropic({"stop_reason": "tool_use", "content": [
        {"type": "tool_use", "id": "x", "name": "structured_response", "input": {"label": True}}]})
    assert orjson.loads(structured.message.content) == {"label": True} and structured.finish_reason == "stop"
    cut = from_anthropic({"stop_reason": "max_tokens", "content": [{"type": "text", "text": "a"}]})
    assert cut.finish_reason == "length"


async def test_anthropic_provider_against_a_fake_messages_endpoint(aiohttp_server_factory: Any) -> None:
    seen: list[dict[str, Any]] = []

    async def messages(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(body)
        if len(seen) == 1:
            error = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}
            return web.json_response(error, status=429, headers={"retry-after": "2"})
        return web.json_response({"id": "msg_2", "type": "message", "role": "assistant", "model": "claude",
                                  "stop_reason": "end_turn", "stop_sequence": None,
                                  "usage": {"input_tokens": 12, "output_tokens": 3},
                                  "content": [{"type": "text", "text": "Cold, then warm."}]})

    base = await aiohttp_server_factory(web.post("/v1/messages", messages))
    provider = AnthropicProvider(model="claude", base_url=base, api_key="test-key")
    assert ANTHROPIC.is_local(ModelSpec(provider="anthropic", model="claude", base_url=base))
    with pytest.raises(ProviderError) as info:
        await provider.generate(req(CONVO, SamplingParams(max_tokens=20)))
    assert info.value.rate_limited and info.value.retry_after == 2.0
    g = await provider.generate(req(CONVO, SamplingParams(max_tokens=20)))
    await provider.aclose()
    assert g.message.content == "Cold, then warm." and g.usage.input_tokens == 12 and g.raw_id == "msg_2"
    assert seen[1]["system"] == "Be brief." and seen[1]["max_tokens"] == 20


async def test_openai_provider_sends_the_key_and_model(aiohttp_server_factory: Any) -> None:
    seen: list[tuple[str | None, dict[str, Any]]] = []

    async def chat(request: web.Request) -> web.Response:
        seen.append((request.headers.get("Authorization"), await request.json()))
        return web.json_response({"id": "c", "choices": [{"message": {"role": "assistant", "content": "ok"},
                                                          "finish_reason": "stop"}]})

    base = await aiohttp_server_factory(web.post("/v1/chat/completions", chat))
    provider = OpenAICompatProvider(base_url=base, model="my-model", api_key="sk-test")
    g = await provider.generate(req([Message(role="user", content="hi")], SamplingParams()))
    await provider.aclose()
    assert g.message.content == "ok" and seen == [("Bearer sk-test", {
        "model": "my-model", "messages": [{"role": "user", "content": "hi"}]})]


def test_keys_come_from_the_environment_and_go_only_where_they_belong(
        monkeypatch: pytest.MonkeyPatch) -> None:
    res = ProviderResources()
    default = "https://api.openai.com/v1"
    spec = ModelSpec(provider="openai", model="m", api_key_env="MY_ENDPOINT_KEY")
    with pytest.raises(ValueError, match="MY_ENDPOINT_KEY"):
        api_key(spec, res, "OPENAI_API_KEY", default)
    monkeypatch.setenv("MY_ENDPOINT_KEY", "secret")
    assert api_key(spec, res, "OPENAI_API_KEY", default) == "secret"
    monkeypatch.setenv("OPENAI_API_KEY", "default-key")
    assert api_key(ModelSpec(provider="openai", model="m"), res, "OPENAI_API_KEY", default) == "default-key"
    # the default key is never sent to an endpoint it was not configured for
    other = ModelSpec(provider="openai", model="m", base_url="https://someone-else.example/v1")
    assert api_key(other, res, "OPENAI_API_KEY", default) is None
    assert api_key(ModelSpec(), res, None, None) is None


def test_plugins_build_providers_and_state_their_locality() -> None:
    res = ProviderResources()
    with pytest.raises(ValueError, match="takes no base_url"):
        EMBEDDED.build(ModelSpec(provider="embedded", base_url="http://127.0.0.1:1/v1"), res)
    local = ModelSpec(provider="openai", model="m", base_url="http://127.0.0.1:5/v1")
    assert isinstance(OPENAI.build(local, res), OpenAICompatProvider) and OPENAI.is_local(local)
    remote = ModelSpec(provider="openai", model="m")
    built = OPENAI.build(remote, res)
    assert not OPENAI.is_local(remote) and built.base_url == "https://api.openai.com/v1"  # type: ignore[attr-defined]
    assert EMBEDDED.is_local(ModelSpec())


def test_credentials_are_stripped_from_stored_urls() -> None:
    assert strip_credentials("https://user:pass@example.com:8443/v1?key=abc") == "https://example.com:8443/v1"
    assert strip_credentials("http://[::1]:9/v1") == "http://[::1]:9/v1"
    assert strip_credentials(None) is None
