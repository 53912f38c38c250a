"""OpenAI Batch API client and batch-mode simulation against the local Files/Batches fake."""

from __future__ import annotations

from pathlib import Path

from deploysim.models.base import Generation, ProviderError
from deploysim.models.batch import BatchLine, OpenAIBatchClient
from deploysim.models.hub import ModelHub
from deploysim.models.mock_server import MockConfig, MockServer
from deploysim.models.policy import SendPolicy
from deploysim.models.spec import ModelSpec, SamplingParams
from deploysim.records import Message, Prefix, PrefixContext
from deploysim.registry import Registry
from deploysim.simulate.config import SimulateConfig
from deploysim.simulate.stage import SimulateInputs, simulate_async
from deploysim.store.db import RunStore
from tests.fakes import sim


def batch_inputs(spec: ModelSpec, cfg: SimulateConfig, *, allow_raw: bool = True) -> SimulateInputs:
    hub = ModelHub(Registry.discover(), SendPolicy(allow_raw_to_remote=allow_raw))
    return SimulateInputs(config=cfg, arms=[sim("x_on_y", spec)], models=hub, progress=False)


def lines(n: int) -> list[BatchLine]:
    return [BatchLine(f"id-{i}", {"model": "m", "messages": [{"role": "user", "content": f"q{i}"}]})
            for i in range(n)]


async def test_batch_round_trip_maps_every_result_back() -> None:
    async with MockServer(MockConfig(batch_delay_s=0.05)) as srv:
        client = OpenAIBatchClient(srv.base_url, api_key="k", poll_interval_s=0.02)
        results = await client.run(lines(7))
        await client.aclose()
        assert set(results) == {f"id-{i}" for i in range(7)}
        assert all(isinstance(r, Generation) for r in results.values())
        assert "q3" in results["id-3"].message.content  # type: ignore[union-attr]
        [batch] = srv.batches.batches.values()
        assert batch["status"] == "completed" and batch["request_counts"]["completed"] == 7
        uploaded = srv.batches.files[batch["input_file_id"]]
        assert uploaded.count(b"\n") == 7 and b'"url":"/v1/chat/completions"' in uploaded


async def test_partial_failures_and_missing_lines_become_errors() -> None:
    cfg = MockConfig(batch_fail_every=3, batch_complete_share=0.7)
    async with MockServer(cfg) as srv:
        client = OpenAIBatchClient(srv.base_url, poll_interval_s=0.01)
        results = await client.run(lines(10))
        await client.aclose()
    assert len(results) == 10
    failed = {k for k, v in results.items() if isinstance(v, ProviderError)}
    assert failed == {"id-2", "id-5", "id-7", "id-8", "id-9"}  # every 3rd of the 7 done + 3 never done
    assert "HTTP 500" in str(results["id-2"]) and "status expired" in str(results["id-9"])


async def test_simulate_in_batch_mode_stores_results_and_retries_failures(tmp_path: Path) -> None:
    store = RunStore.open(tmp_path)
    store.put_prefixes(Prefix(id=Prefix.make_id(f"c{i}", 0, m), conversation_id=f"c{i}", turn_index=0,
                              messages=m, context=PrefixContext())
                       for i in range(9) for m in [(Message(role="user", content=f"question {i}"),)])
    async with MockServer(MockConfig(batch_fail_every=4)) as srv:
        spec = ModelSpec(provider="openai", model="m", base_url=srv.base_url, batch_api=True, samples=2,
                         params=SamplingParams(seed=1))
        cfg = SimulateConfig(batch_poll_s=0.01, batch_max_requests=8)
        [r] = await simulate_async(batch_inputs(spec, cfg), store)
        assert len(r.batch_ids) == 3 and r.ok + r.errors == 18 and r.errors == 4  # chunks of 8, 8, 2
        assert store.count_completions(status="error") == 4
        assert all("batch: HTTP 500" in (c.error or "") for c in store.iter_completions(status="error"))
        assert store.get_meta(f"simulate.batch.x_on_y.{sim('x_on_y', spec).generator_hash}") == []
        srv.config.batch_fail_every = 0
        [r2] = await simulate_async(batch_inputs(spec, cfg), store)
    assert r2.ok == 4 and r2.pending == 0 and store.count_completions(status="ok") == 18


async def test_a_batch_left_by_a_killed_run_is_collected_not_resubmitted(tmp_path: Path) -> None:
    store = RunStore.open(tmp_path)
    msgs = (Message(role="user", content="only question"),)
    prefix = Prefix(id=Prefix.make_id("c", 0, msgs), conversation_id="c", turn_index=0, messages=msgs)
    store.put_prefixes([prefix])
    async with MockServer() as srv:
        spec = ModelSpec(provider="openai", model="m", base_url=srv.base_url, batch_api=True)
        client = OpenAIBatchClient(srv.base_url)
        bid = await client.submit([BatchLine(f"{prefix.id}:0", {"model": "m", "messages": [
            {"role": "user", "content": "only question"}]})])
        await client.aclose()
        store.set_meta(f"simulate.batch.x_on_y.{sim('x_on_y', spec).generator_hash}", [bid])
        cfg = SimulateConfig(batch_poll_s=0.01)
        [r] = await simulate_async(batch_inputs(spec, cfg), store)
        assert len(srv.batches.batches) == 1 and r.ok == 1 and r.batch_ids == []


async def test_batch_lines_obey_the_send_policy(tmp_path: Path) -> None:
    """Raw prefixes never go into a batch file for a remote endpoint: the gate applies to batch
    lines exactly as to online calls (the mock server is on loopback, so it is treated as remote here
    by pointing the spec at a host name that cannot resolve — nothing may be uploaded at all)."""
    store = RunStore.open(tmp_path)
    msgs = (Message(role="user", content="my SSN is 078-05-1120"),)
    store.put_prefixes([Prefix(id=Prefix.make_id("c", 0, msgs), conversation_id="c", turn_index=0,
                               messages=msgs)])
    spec = ModelSpec(provider="openai", model="m", base_url="http://deploysim-remote.invalid/v1",
                     batch_api=True)
    [r] = await simulate_async(batch_inputs(spec, SimulateConfig(batch_poll_s=0.01), allow_raw=False), store)
    assert (r.ok, r.errors, r.refused, r.batch_ids) == (0, 1, 1, [])
    (c,) = store.iter_completions()
    assert (c.error or "").startswith("refused:")
