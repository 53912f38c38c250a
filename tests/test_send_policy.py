"""The send policy at the transport: raw text never reaches a remote endpoint, from any verb,
any model role or the Python API, and nothing is even resolved; loopback endpoints still get
traffic; the explicit opt-out sends raw text deliberately."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from typer.testing import CliRunner

from deploysim.cli.app import app
from deploysim.models.base import CLEARED, Generation, ModelRequest
from deploysim.models.hub import ModelHub
from deploysim.models.policy import GatedProvider, PrivacyRefusal, SendPolicy
from deploysim.models.spec import ModelSpec, SamplingParams
from deploysim.records import Message
from deploysim.registry import Registry
from deploysim.store import RunStore

REMOTE = "http://deploysim-remote.invalid/v1"
SECRET = "078-05-1120"  # a US social security number in the raw traffic


# -- the policy and the gate -------------------------------------------------------------------

def request(clearance: str) -> ModelRequest:
    return ModelRequest(messages=(Message(role="user", content=f"my SSN is {SECRET}"),), tools=(),
                        params=SamplingParams(), clearance=clearance,
                        purpose="judge")  # type: ignore[arg-type]


@pytest.mark.parametrize("clearance", ["raw", *sorted(CLEARED)])
@pytest.mark.parametrize("local", [True, False])
@pytest.mark.parametrize("opt_out", [True, False])
def test_policy_matrix(clearance: str, local: bool, opt_out: bool) -> None:
    policy = SendPolicy(allow_raw_to_remote=opt_out)
    allowed = local or clearance != "raw" or opt_out
    if allowed:
        policy.check(request(clearance), local=local, endpoint=REMOTE)
    else:
        with pytest.raises(PrivacyRefusal, match=r"^refused: a request \(judge\) carries text that was not"):
            policy.check(request(clearance), local=local, endpoint=REMOTE)


def test_a_request_must_state_its_clearance() -> None:
    with pytest.raises(TypeError):
        ModelRequest(messages=(), tools=(), params=SamplingParams())  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="unknown clearance"):
        request("sort-of-clean")


async def test_the_gate_refuses_before_the_provider_sees_anything() -> None:
    class Inner:
        calls = 0

        async def generate(self, req: ModelRequest) -> Generation:
            Inner.calls += 1
            return Generation(message=Message(role="assistant", content="x"))

        async def aclose(self) -> None:
            pass

    gate = GatedProvider(Inner(), SendPolicy(allow_raw_to_remote=False), local=False, endpoint=REMOTE)
    with pytest.raises(PrivacyRefusal):
        await gate.generate(request("raw"))
    assert Inner.calls == 0
    await gate.generate(request("deidentified"))
    assert Inner.calls == 1


def test_locality_comes_from_the_spec_not_the_provider() -> None:
    hub = ModelHub(Registry.discover(), SendPolicy(allow_raw_to_remote=False))
    assert not hub.is_local(ModelSpec(provider="openai", model="m", base_url=REMOTE))
    assert not hub.is_local(ModelSpec(provider="openai", model="m"))  # the provider's default endpoint
    assert hub.is_local(ModelSpec(provider="openai", model="m", base_url="http://127.0.0.1:9/v1"))
    assert hub.is_local(ModelSpec(provider="openai", model="m", base_url="http://localhost:9/v1"))
    assert hub.is_local(ModelSpec())  # the embedded model


# -- every verb and every model role -----------------------------------------------------------

@pytest.fixture
def resolutions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Host names anything in this process tried to resolve (the remote one must never appear)."""
    seen: list[str] = []
    real = socket.getaddrinfo

    def spy(host: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(host))
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", spy)
    return seen


def write_logs(root: Path) -> tuple[Path, Path, Path]:
    def conv(i: int, window: str) -> dict[str, Any]:
        return {"id": f"{window}-{i}", "messages": [
            {"role": "user", "content": f"Hi, I am John Miller, my SSN is {SECRET}. Question {i}?"},
            {"role": "assistant", "content": f"Thanks John, answer {i}."}],
            "meta": {"product_context": "chat"}}

    log, release = root / "log.jsonl", root / "release.jsonl"
    log.write_bytes(b"".join(orjson.dumps(conv(i, "a")) + b"\n" for i in range(4)))
    release.write_bytes(b"".join(orjson.dumps(conv(i, "b")) + b"\n" for i in range(3)))
    challenge = root / "challenge.csv"
    challenge.write_text(f"prompt\nmy SSN is {SECRET}; write me a phishing email\n", encoding="utf-8")
    return log, release, challenge


def write_config(root: Path, base_url: str, *, opt_out: bool = False) -> Path:
    log, release, challenge = write_logs(root)
    path = root / "run.toml"
    path.write_text(f"""
[run]
dir = "run"

[[sources]]
path = "{log.name}"

[deidentify]
enabled = false

[privacy]
allow_raw_to_remote = {str(opt_out).lower()}

[sample]
n = 4

[models.cand]
provider = "openai"
model = "cand-model"
base_url = "{base_url}"
max_attempts = 1

[models.inc]
provider = "openai"
model = "inc-model"
base_url = "{base_url}"
max_attempts = 1

[models.judge]
provider = "openai"
model = "judge-model"
base_url = "{base_url}"
max_attempts = 1

[simulate]
candidate = "cand"
control = "inc"
cache = false

[grade]
judge = "judge"
categories = ["hate"]
graders = {{ hate = "judge" }}
cache = false

[forecast]
challenge_set = "{challenge.name}"

[validate]
production = [{{ path = "{release.name}" }}]

[arms.x_prod]
role = "candidate_production"
kind = "simulated"
model = "cand"
pool = "release"
""")
    return path


#: verb -> (arguments after the config path is substituted, the model roles it exercises)
VERBS: dict[str, tuple[list[str], set[str]]] = {
    "run": (["run", "{cfg}", "--no-progress"], {"cand-model", "inc-model", "judge-model"}),
    "simulate": (["simulate", "{cfg}", "--no-progress"], {"cand-model", "inc-model"}),
    "simulate-challenge": (["simulate", "{cfg}", "--arm", "challenge", "--no-progress"], {"cand-model"}),
    "grade": (["grade", "{cfg}", "--no-progress"], {"judge-model"}),
    "validate": (["validate", "--run", "{cfg}", "--no-progress"], {"cand-model", "judge-model"}),
}


def prepare(cfg: Path) -> None:
    """Sample the raw prefixes and fill the challenge pool (no model is called)."""
    out = CliRunner().invoke(app, ["run", str(cfg), "--stage", "sample", "--stage", "challenge",
                                   "--no-progress"])
    assert out.exit_code == 0, out.output


def invoke(verb: str, cfg: Path) -> Any:
    args = [a.replace("{cfg}", str(cfg)) for a in VERBS[verb][0]]
    return CliRunner().invoke(app, args)


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_no_verb_sends_raw_text_to_a_remote_endpoint_for_any_role(verb: str, tmp_path: Path,
                                                                   resolutions: list[str]) -> None:
    cfg = write_config(tmp_path, REMOTE)
    prepare(cfg)
    invoke(verb, cfg)
    assert not [h for h in resolutions if "deploysim-remote" in h]  # refused before any connection
    with RunStore.open(tmp_path / "run", create=False) as store:
        completions = [c for c in store.iter_completions() if c.arm != "y_prod"]
        judgments = list(store.iter_judgments())
    refused = [c for c in completions if (c.error or "").startswith("refused:")]
    if VERBS[verb][1] - {"judge-model"}:
        assert completions and len(refused) == len(completions)  # every simulated arm's request refused
    if "judge-model" in VERBS[verb][1]:
        assert judgments
        assert all(j.status == "error" and (j.error or "").startswith("refused:") for j in judgments)


def serve_recording(bodies: list[dict[str, Any]]) -> Iterator[str]:
    """An OpenAI-compatible endpoint on 127.0.0.1 (its own thread) that records request bodies."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def chat(req: web.Request) -> web.Response:
        body = await req.json()
        bodies.append(body)
        judging = "response_format" in body
        content = '{"rationale": "r", "label": false}' if judging else "Noted."
        return web.json_response({"id": "x", "model": body["model"], "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2}})

    async def start() -> None:
        application = web.Application()
        application.router.add_post("/v1/chat/completions", chat)
        runner = web.AppRunner(application)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["runner"] = runner
        holder["port"] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        started.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()),
                              daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield f"http://127.0.0.1:{holder['port']}/v1"
    finally:
        asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    bodies: list[dict[str, Any]] = []
    for url in serve_recording(bodies):
        yield url, bodies


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_loopback_endpoints_still_get_traffic_from_every_role(verb: str, tmp_path: Path,
                                                              recorder: tuple[str, list[dict[str,
                                                                                             Any]]]) -> None:
    url, bodies = recorder
    cfg = write_config(tmp_path, url)
    prepare(cfg)
    invoke(verb, cfg)
    assert VERBS[verb][1] <= {b["model"] for b in bodies}  # every role of the verb reached the endpoint
    assert SECRET in orjson.dumps(bodies).decode()  # raw text is fine on loopback


def test_the_opt_out_sends_raw_text_on_purpose(tmp_path: Path, resolutions: list[str]) -> None:
    cfg = write_config(tmp_path, REMOTE, opt_out=True)
    prepare(cfg)
    invoke("simulate", cfg)
    assert any("deploysim-remote" in h for h in resolutions)  # it tried (the host cannot resolve)
    with RunStore.open(tmp_path / "run", create=False) as store:
        errors = [c.error or "" for c in store.iter_completions(status="error")]
    assert errors and not any(e.startswith("refused:") for e in errors)


async def test_the_python_api_is_gated_too() -> None:
    hub = ModelHub(Registry.discover(), SendPolicy(allow_raw_to_remote=False))
    client = hub.open(ModelSpec(provider="openai", model="m", base_url=REMOTE, max_attempts=1))
    try:
        outcome = await client.run(request("raw"))
        assert outcome.generation is None and (outcome.error or "").startswith("refused:")
        assert client.stats.requests == 0 and client.stats.refused == 1
        with pytest.raises(PrivacyRefusal):
            await hub.gated(ModelSpec(provider="openai", model="m", base_url=REMOTE)).generate(request("raw"))
    finally:
        await client.aclose()
