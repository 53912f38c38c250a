"""Wire format, error classification, request keys and the response cache."""

from __future__ import annotations

import pytest

from deploysim.models.base import Generation, ModelRequest, ProviderError
from deploysim.models.cache import ResponseCache, request_key
from deploysim.models.spec import ModelSpec, SamplingParams
from deploysim.models.wire import chat_body, is_loopback_url, parse_chat_response, status_error
from deploysim.records import Message, ToolCall, ToolSpec, Usage
from deploysim.store.db import RunStore

CALL = ToolCall(id="call_1", name="lookup_order", arguments='{"order": "A17"}')


def test_chat_body_carries_tools_params_and_extras() -> None:
    msgs = [Message(role="user", content="where is my order?"),
            Message(role="assistant", content="", tool_calls=(CALL,)),
            Message(role="tool", content='{"status": "shipped"}', tool_call_id="call_1", provenance="real")]
    params = SamplingParams(temperature=0.2, max_tokens=50, seed=3, stop=["END"],
                            extra={"logprobs": True, "top_logprobs": 2, "n": 2,
                                   "response_format": {"type": "json_object"}})
    body = chat_body("m", msgs, [ToolSpec(name="lookup_order", parameters={"type": "object"})], params)
    call = {"name": "lookup_order", "arguments": '{"order": "A17"}'}
    assert body["messages"][1] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": call}]}
    tool_msg = {"role": "tool", "content": '{"status": "shipped"}', "tool_call_id": "call_1"}
    assert body["messages"][2] == tool_msg
    assert body["tools"][0]["function"]["name"] == "lookup_order"
    assert (body["temperature"], body["max_tokens"], body["seed"], body["stop"]) == (0.2, 50, 3, ["END"])
    assert body["logprobs"] is True and body["n"] == 2 and body["response_format"] == {"type": "json_object"}


def test_parse_response_with_tool_calls_logprobs_and_alternatives() -> None:
    data = {"id": "c1", "usage": {"prompt_tokens": 11, "completion_tokens": 7}, "choices": [
        {"message": {"role": "assistant", "content": None, "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "search", "arguments": {"q": "x"}}}]},
         "finish_reason": "tool_calls",
         "logprobs": {"content": [{"token": "a", "logprob": -0.5, "top_logprobs": [{"token": "a"}]}]}},
        {"message": {"role": "assistant", "content": "second"}, "finish_reason": "stop"}]}
    g = parse_chat_response(data, 0.3)
    assert g.message.tool_calls == (ToolCall(id="t1", name="search", arguments='{"q":"x"}'),)
    assert g.message.content == "" and g.finish_reason == "tool_calls" and g.raw_id == "c1"
    assert g.usage == Usage(input_tokens=11, output_tokens=7) and g.latency_s == 0.3
    assert g.logprobs == [{"token": "a", "logprob": -0.5, "top_logprobs": [{"token": "a"}]}]
    assert [m.content for m in g.alternatives] == ["second"]


@pytest.mark.parametrize("data", [{"choices": []}, {"id": "x"}, [], {"choices": [{"nomessage": 1}]}])
def test_unusable_bodies_are_retryable_errors(data: object) -> None:
    with pytest.raises(ProviderError) as info:
        parse_chat_response(data)
    assert info.value.retryable


def test_status_errors_are_classified() -> None:
    e429 = status_error(429, b'{"error": {"message": "slow down", "code": "rate_limit_exceeded"}}',
                        {"retry-after-ms": "1500", "Retry-After": "2"})
    assert e429.retryable and e429.rate_limited and e429.retry_after == 1.5 and "slow down" in str(e429)
    quota = status_error(429, b'{"error": {"message": "no money", "code": "insufficient_quota"}}', {})
    assert not quota.retryable and not quota.rate_limited
    assert not status_error(400, b'{"error": {"message": "context too long"}}', {}).retryable
    assert status_error(503, b"<html>busy</html>", {"Retry-After": "3"}).retry_after == 3.0
    assert status_error(500, b"oops", {}).retryable


def test_loopback_detection() -> None:
    assert is_loopback_url("http://127.0.0.1:8000/v1") and is_loopback_url("http://localhost/v1")
    assert is_loopback_url("http://[::1]:9/v1") and is_loopback_url("http://127.8.9.10/v1")
    assert not is_loopback_url("https://api.openai.com/v1") and not is_loopback_url("http://10.0.0.5/v1")
    assert not is_loopback_url(None)


def _req(text: str = "hi", params: SamplingParams | None = None, tools: tuple[ToolSpec, ...] = (),
         clearance: str = "public") -> ModelRequest:
    return ModelRequest(messages=(Message(role="user", content=text),), tools=tools,
                        params=params or SamplingParams(temperature=1.0), clearance=clearance)  # type: ignore[arg-type]


def test_request_key_separates_samples_specs_and_scopes() -> None:
    k0 = request_key("spec", _req(), 0)
    assert k0 == request_key("spec", _req(), 0) == request_key("spec", _req(clearance="raw"), 0)
    assert k0 != request_key("spec", _req(), 1)
    assert k0 != request_key("other", _req(), 0)
    assert k0 != request_key("spec", _req(params=SamplingParams(temperature=0.5)), 0)
    assert k0 != request_key("spec", _req(tools=(ToolSpec(name="t"),)), 0)
    # identical text in two prefixes: two independent draws unless the scope is shared
    assert request_key("spec", _req(), 0, "prefix-a") != request_key("spec", _req(), 0, "prefix-b")


def test_reasoning_and_the_reported_model_are_parsed() -> None:
    body = {"id": "x", "model": "served-model-v2", "system_fingerprint": "fp_1",
            "choices": [{"message": {"role": "assistant", "content": "42", "reasoning_content": "6 times 7"},
                         "finish_reason": "stop"}]}
    gen = parse_chat_response(body)
    assert gen.message.reasoning == "6 times 7" and gen.reported_model == "served-model-v2"
    assert gen.fingerprint == "fp_1"
    other = parse_chat_response({"choices": [{"message": {"content": "a", "reasoning": "b"}}]})
    assert other.message.reasoning == "b" and other.reported_model is None
    assert "reasoning" not in str(chat_body("m", [gen.message], [], SamplingParams()))  # never sent back


def test_spec_hash_ignores_limits_and_prices() -> None:
    a = ModelSpec(provider="openai", model="m", base_url="http://127.0.0.1:1/v1")
    assert a.spec_hash() == a.model_copy(update={"concurrency": 3, "rpm": 10, "batch_api": True}).spec_hash()
    assert a.spec_hash() != a.model_copy(update={"params": SamplingParams(temperature=0.1)}).spec_hash()


def test_response_cache_write_behind_and_bulk_lookup(tmp_path) -> None:  # type: ignore[no-untyped-def]
    gen = Generation(message=Message(role="assistant", content="cached"), usage=Usage(output_tokens=2))
    with RunStore.open(tmp_path) as store:
        cache = ResponseCache(store, flush_every=3)
        cache.put("k1", "h", gen)
        assert store.count_cached_responses() == 0  # buffered
        assert cache.get("k1") == gen  # served from the buffer
        cache.put("k2", "h", gen)
        cache.put("k3", "h", gen)
        assert store.count_cached_responses() == 3
        cache.put("k1", "h", gen.model_copy(update={"finish_reason": "other"}))
        cache.flush()
        assert store.count_cached_responses() == 3  # an existing key is kept
        again = ResponseCache(store)
        assert set(again.get_many(["k1", "k3", "missing"])) == {"k1", "k3"}
        assert again.get("missing") is None and again.misses == 2 and again.hits == 2
