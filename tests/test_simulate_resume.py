"""kill -9 of ``deploysim simulate`` at random moments, then resume: exactly one completion
per (prefix, arm, sample), and the same set as an uninterrupted run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploysim.models.mock_server import MockConfig, MockServerThread
from deploysim.records import Message, Prefix, PrefixContext
from deploysim.store.db import RunStore

N_PREFIXES = 150
EXPECTED = N_PREFIXES * 3  # X with 2 samples + Y with 1


def write_run(root: Path, base_url: str) -> Path:
    with RunStore.open(root / "run") as store:
        store.put_prefixes(
            Prefix(id=Prefix.make_id(f"c{i}", 0, msgs), conversation_id=f"c{i}", turn_index=0, messages=msgs,
                   context=PrefixContext(product_context="general_chat"))
            for i in range(N_PREFIXES) for msgs in [(Message(role="user", content=f"prompt number {i}"),)])
    config = root / "run.toml"
    config.write_text(f"""
[run]
dir = "run"

[models.cand]
provider = "openai"
model = "candidate-x"
base_url = "{base_url}"
samples = 2
params = {{ seed = 11, max_tokens = 32 }}
concurrency = 8

[models.inc]
provider = "openai"
model = "incumbent-y"
base_url = "{base_url}"
concurrency = 8

[simulate]
candidate = "cand"
control = "inc"
concurrency = 12
write_batch = 16
""")
    return config


def start(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "from deploysim.cli.app import main; main()", "simulate",
                             str(config), "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def snapshot(run_dir: Path) -> dict[tuple[str, str, int], tuple[str, str]]:
    with RunStore.open(run_dir, create=False) as store:
        rows = list(store.iter_completions())
    keys = {(c.prefix_id, c.arm, c.sample_index) for c in rows}
    assert len(keys) == len(rows), "a (prefix, arm, sample) was stored twice"
    return {(c.prefix_id, c.arm, c.sample_index): (c.status, c.message.content if c.message else "")
            for c in rows}


def ok_count(run_dir: Path) -> int:
    with RunStore.open(run_dir, create=False) as store:
        return store.count_completions(status="ok")


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume(tmp_path: Path) -> None:
    rng = random.Random(20261122)
    with MockServerThread(MockConfig(latency_s=0.02, jitter_s=0.03, seed=5)) as srv:
        ref_cfg = write_run(tmp_path / "reference", srv.base_url)
        proc = start(ref_cfg)
        assert proc.wait(timeout=120) == 0, proc.stderr.read().decode() if proc.stderr else ""
        reference = snapshot(tmp_path / "reference" / "run")

        cfg = write_run(tmp_path / "killed", srv.base_url)
        progress = []
        for _ in range(4):
            before = ok_count(tmp_path / "killed" / "run")
            proc = start(cfg)
            deadline = time.monotonic() + 60
            while ok_count(tmp_path / "killed" / "run") == before and proc.poll() is None:
                assert time.monotonic() < deadline, "simulate made no progress"
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.6))  # a random moment of the run, mid-batch or mid-write
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            progress.append(ok_count(tmp_path / "killed" / "run"))
        proc = start(cfg)
        assert proc.wait(timeout=120) == 0, proc.stderr.read().decode() if proc.stderr else ""
        resumed = snapshot(tmp_path / "killed" / "run")

    assert len(reference) == EXPECTED and all(v[0] == "ok" for v in reference.values())
    assert any(0 < n < EXPECTED for n in progress), f"no kill landed mid-run: {progress}"
    assert progress == sorted(progress)  # work done before a kill is never lost
    assert resumed == reference  # same keys, all ok, same (deterministic) contents
