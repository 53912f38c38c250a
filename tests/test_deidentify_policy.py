"""The loopback policy, and a recording fake server proving what the simulate stage sends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from deploysim.deidentify.config import DeidentifyConfig, PrivacyConfig
from deploysim.deidentify.policy import (
    PrivacyRefusal,
    check_prefix_allowed,
    describe_policy,
    is_loopback_url,
    provider_guard,
)
from deploysim.deidentify.stage import make_prefix_transform
from deploysim.models.spec import ModelSpec
from deploysim.records import Prefix, PrefixContext
from deploysim.sample.prefixes import make_prefix
from deploysim.simulate.config import SimulateConfig
from deploysim.simulate.stage import simulate_async
from deploysim.store.db import RunStore
from tests.deid_planted import letter_conversation, planted_values, support_conversation


def prefix(status: str) -> Prefix:
    return Prefix(
        id=f"p-{status}",
        conversation_id="c",
        turn_index=0,
        messages=(),
        context=PrefixContext(deidentified=status),
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "loopback", "opt_out", "allowed"),
    [
        ("raw", False, False, False),
        ("raw", True, False, True),
        ("raw", False, True, True),
        ("deidentified", False, False, True),
        ("synthetic", False, False, True),
    ],
)
def test_check_prefix_allowed(status: str, loopback: bool, opt_out: bool, allowed: bool) -> None:
    privacy = PrivacyConfig(allow_raw_to_remote=opt_out)
    if allowed:
        check_prefix_allowed(prefix(status), endpoint_is_loopback=loopback, privacy=privacy)
    else:
        with pytest.raises(PrivacyRefusal, match=r"not de-identified.*allow_raw_to_remote"):
            check_prefix_allowed(prefix(status), endpoint_is_loopback=loopback, privacy=privacy)


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8000/v1", True),
        ("http://127.8.9.10/v1", True),
        ("http://[::1]:9000/v1", True),
        ("http://localhost:8080", True),
        ("https://api.openai.com/v1", False),
        ("http://10.0.0.5:8000/v1", False),
        ("http://localhost.example.com/v1", False),
        (None, False),
    ],
)
def test_is_loopback_url(url: str | None, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback


class _Endpoint:
    def __init__(self, is_loopback: bool) -> None:
        self.is_loopback = is_loopback


def test_guard_follows_the_provider_unless_overridden() -> None:
    guard = provider_guard(PrivacyConfig())
    guard(prefix("raw"), _Endpoint(True))
    with pytest.raises(PrivacyRefusal):
        guard(prefix("raw"), _Endpoint(False))
    with pytest.raises(PrivacyRefusal):
        provider_guard(PrivacyConfig(), endpoint_is_loopback=False)(prefix("raw"), _Endpoint(True))


def test_policy_statement_names_the_setting() -> None:
    assert "refused" in describe_policy(PrivacyConfig())["statement"]
    opted = describe_policy(PrivacyConfig(allow_raw_to_remote=True))
    assert opted["allow_raw_to_remote"] is True and "Opt-out" in opted["statement"]


@asynccontextmanager
async def recording_server(bodies: list[dict[str, Any]]) -> AsyncIterator[str]:
    """An OpenAI-compatible chat endpoint on 127.0.0.1 that records every request body."""

    async def chat(request: web.Request) -> web.Response:
        bodies.append(await request.json())
        return web.json_response(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": 0,
                "model": "fake",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": "Noted."},
                    }
                ],
                "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
            }
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


async def simulate(run: Path, prefixes: list[Prefix], base_url: str, privacy: PrivacyConfig) -> RunStore:
    """Run the simulate stage against the server, which the guard treats as a remote endpoint."""
    spec = ModelSpec(provider="openai", base_url=base_url, model="fake", max_attempts=1, adaptive=False)
    store = RunStore.open(run)
    store.put_prefixes(prefixes)
    await simulate_async(
        store,
        [("x_on_y", spec)],
        SimulateConfig(cache=False),
        guard=provider_guard(privacy, endpoint_is_loopback=False),
        progress=False,
    )
    return store


async def test_recording_server_sees_only_deidentified_prefixes(tmp_path: Path) -> None:
    convs = [support_conversation(), letter_conversation()]
    raw = [
        make_prefix(c, t)
        for c in convs
        for t, m in enumerate(c.messages[:-1])
        if m.role == "user" and c.messages[t + 1].role == "assistant"
    ]
    clean = list(make_prefix_transform(DeidentifyConfig(workers=1))(raw))
    bodies: list[dict[str, Any]] = []
    async with recording_server(bodies) as url:
        with await simulate(tmp_path / "raw", raw, url, PrivacyConfig()) as store:
            errors = list(store.iter_completions(arm="x_on_y", status="error"))
        assert bodies == []  # refused before anything was sent
        assert len(errors) == len(raw) and all("refused" in (c.error or "") for c in errors)

        with await simulate(tmp_path / "clean", clean, url, PrivacyConfig()) as store:
            assert store.count_completions(arm="x_on_y", status="ok") == len(clean)
        sent = orjson.dumps(bodies).decode()
        assert len(bodies) == len(clean) and "<PERSON_1>" in sent
        assert [v for v in planted_values() if v in sent] == []

        bodies.clear()  # the explicit opt-out sends raw text, and the server would have seen it
        with await simulate(tmp_path / "optout", raw, url, PrivacyConfig(allow_raw_to_remote=True)) as store:
            assert store.count_completions(arm="x_on_y", status="ok") == len(raw)
        assert "Lina Artemova" in orjson.dumps(bodies).decode()
