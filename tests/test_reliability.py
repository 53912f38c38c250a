"""Runs that cannot mislead: a forecast locks only on complete data, stale forecasts get new
versions, one writer per run, configuration checked before anything is spent, forecast files
written atomically, credentials never stored (docs/reliability.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from deploysim.cli.app import app
from deploysim.demo.corpus import generate_corpus
from deploysim.forecast.locked import verify
from deploysim.models.mock_server import MockConfig, MockServerThread
from deploysim.store import RunStore

N = 30


def write_run(root: Path, base_url: str, *, prices: float = 0.0, extra: str = "") -> Path:
    if not (root / "log.jsonl.gz").exists():
        generate_corpus(root / "log.jsonl.gz", n=200, seed=11, window="baseline")
    path = root / "run.toml"
    path.write_text(f"""
[run]
dir = "run"

[[sources]]
path = "log.jsonl.gz"

[deidentify]
enabled = false

[sample]
n = {N}
seed = 3

[models.cand]
provider = "openai"
model = "cand"
base_url = "{base_url}"
max_attempts = 1
concurrency = 2
adaptive = false
params = {{ max_tokens = 20 }}
prices = {{ input_per_mtok = {prices}, output_per_mtok = {prices} }}

[simulate]
candidate = "cand"
concurrency = 2

[grade]
mode = "offline"
categories = ["refusal", "fabricated_facts"]

[outputs]
export = []
report = false
{extra}
""")
    return path


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_a_budget_stop_locks_nothing_and_a_rerun_completes(tmp_path: Path) -> None:
    with MockServerThread(MockConfig(latency_s=0.01)) as srv:
        cfg = write_run(tmp_path, srv.base_url, prices=2000.0)  # about $0.2 a request
        code, out = cli("run", str(cfg), "--budget", "1.0", "--no-progress")
        assert code == 3, out  # stopped by the budget
        assert not (tmp_path / "run" / "forecast.json").exists()
        with RunStore.open(tmp_path / "run", create=False) as store:
            x = [e for e in store.estimates() if e.arm == "x_on_y"]
            assert x and all(e.pending > 0 for e in x)  # what did not run is counted, not dropped
            assert all(e.n + e.pending + e.failures + sum(e.abstained.values()) == N for e in x)
        code, out = cli("run", str(cfg), "--no-progress")
        assert code == 0, out
        payload, _ = verify(tmp_path / "run" / "forecast.json")
        assert payload.completeness["complete"] and not payload.completeness["forced"]


def test_an_error_storm_blocks_the_lock_unless_forced_and_the_file_says_so(tmp_path: Path) -> None:
    with MockServerThread(MockConfig(rate_500=0.5, seed=1)) as srv:
        cfg = write_run(tmp_path, srv.base_url)
        code, out = cli("run", str(cfg), "--no-progress")
        assert code == 4 and "not locking a forecast on incomplete data" in " ".join(out.split()), out
        assert not (tmp_path / "run" / "forecast.json").exists()
        code, out = cli("forecast", "lock", str(tmp_path / "run"), "--allow-incomplete")
        assert code == 0, out
    payload, _ = verify(tmp_path / "run" / "forecast.json")
    arm = payload.completeness["arms"]["x_on_y"]
    assert payload.completeness["forced"] and arm["errors"] > 5 and not arm["complete"]


def test_total_failure_keeps_the_rows_and_exits_incomplete(tmp_path: Path) -> None:
    with MockServerThread(MockConfig(rate_500=1.0)) as srv:
        cfg = write_run(tmp_path, srv.base_url)
        code, _ = cli("run", str(cfg), "--no-progress")
        assert code == 4
        code, _ = cli("simulate", str(cfg), "--no-progress")  # the retry fails again
        assert code == 4
    with RunStore.open(tmp_path / "run", create=False) as store:
        x = [e for e in store.estimates() if e.arm == "x_on_y"]
    assert len(x) == 2 and all(e.n == 0 and e.rate is None and e.failures == N for e in x)
    code, out = cli("estimate", str(tmp_path / "run"), "--json")
    assert {e["arm"] for e in orjson.loads(out[out.index("{"):])["estimates"]} >= {"x_on_y", "y_prod"}


def test_a_stale_forecast_is_reported_and_a_new_version_supersedes_it(tmp_path: Path) -> None:
    with MockServerThread(MockConfig(latency_s=0.01)) as srv:
        cfg = write_run(tmp_path, srv.base_url, prices=2000.0)
        assert cli("run", str(cfg), "--budget", "1.0", "--allow-incomplete", "--no-progress")[0] == 3
        first, first_hash = verify(tmp_path / "run" / "forecast.json")
        assert first.completeness["forced"]
        code, out = cli("run", str(cfg), "--no-progress")
        assert code == 0 and "STALE" in out, out
        assert verify(tmp_path / "run" / "forecast.json")[1] == first_hash  # never edited
        code, out = cli("forecast", "lock", str(tmp_path / "run"), "--new-version")
        assert code == 0, out
    second, _ = verify(tmp_path / "run" / "forecast.v2.json")
    assert second.version == 2 and second.supersedes == first_hash and not second.completeness["forced"]


def test_a_second_writer_is_refused_and_a_dead_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    cfg = write_run(tmp_path, "http://127.0.0.1:9/v1")
    (tmp_path / "run").mkdir()
    script = (f"import time\nfrom pathlib import Path\nfrom deploysim.runlock import RunLock\n"
              f"lock = RunLock(Path({str(tmp_path / 'run')!r})).acquire()\n"
              "print('held', flush=True)\ntime.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        code, out = cli("run", str(cfg), "--stage", "sample", "--no-progress")
        assert code == 5 and f"in use by pid {holder.pid}" in " ".join(out.split()), out
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    code, out = cli("run", str(cfg), "--stage", "sample", "--no-progress")
    assert code == 0, out  # the kernel dropped the dead holder's lock


def test_config_problems_stop_the_run_before_any_request(tmp_path: Path) -> None:
    with MockServerThread(MockConfig()) as srv:
        cfg = write_run(tmp_path, srv.base_url, extra='[forecast]\nchallenge_set = "missing.csv"\n')
        text = cfg.read_text().replace('categories = ["refusal", "fabricated_facts"]',
                                       'categories = ["refusal", "no_such_category"]')
        cfg.write_text(text.replace('stratify_by', 'x'))
        code, out = cli("run", str(cfg), "--no-progress")
        assert code == 2 and "no_such_category" in out and "missing.csv" in out
        assert srv.stats.requests == 0
    assert not (tmp_path / "run" / "run.sqlite").exists()  # nothing was read or written


def test_a_forecast_is_written_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deploysim.forecast import locked
    from deploysim.forecast.model import ForecastPayload

    payload = ForecastPayload(run_id="r", created_at="2026-01-01T00:00:00+00:00", interval_level=0.9,
                              grader_hashes={}, discrepancy={})
    path = tmp_path / "forecast.json"

    def crash(*args: object) -> None:
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(locked.os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        locked.write_locked(payload, path)
    assert list(tmp_path.iterdir()) == []  # no partial file to block the next run
    monkeypatch.undo()
    digest = locked.write_locked(payload, path)
    assert verify(path)[1] == digest
    with pytest.raises(FileExistsError):
        locked.write_locked(payload, path)


def test_credentials_in_urls_are_never_stored(tmp_path: Path) -> None:
    with MockServerThread(MockConfig()) as srv:
        url = srv.base_url.replace("http://", "http://alice:hunter2secret@")
        cfg = write_run(tmp_path, url)
        code, out = cli("run", str(cfg), "--stage", "sample", "--stage", "simulate", "--no-progress")
        assert code == 0, out
    time.sleep(0.1)
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert b"hunter2secret" not in path.read_bytes(), path


@pytest.mark.parametrize("quotas", ["", "\nquotas = { a = 5 }"])
def test_a_misspelled_stratification_field_is_an_error_not_ignored(tmp_path: Path, quotas: str) -> None:
    cfg = write_run(tmp_path, "http://127.0.0.1:9/v1")
    text = cfg.read_text().replace("seed = 3\n", f'seed = 3\nstratify_by = "prodcut_context"{quotas}\n')
    cfg.write_text(text)
    code, out = cli("run", str(cfg), "--stage", "sample", "--no-progress")
    text = " ".join(out.split())
    assert code == 2 and "sample.stratify_by = 'prodcut_context': no conversation" in text, out
    with RunStore.open(tmp_path / "run", create=False) as store:
        assert store.count_prefixes() == 0


def test_a_run_dir_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    cfg = write_run(tmp_path, "http://127.0.0.1:9/v1")
    (tmp_path / "run").write_text("not a directory")
    code, out = cli("run", str(cfg), "--stage", "sample", "--no-progress")
    assert code == 2 and "run.dir:" in out and "is a file, not a run directory" in " ".join(out.split())
    assert "Traceback" not in out


def test_a_missing_spacy_model_is_a_clear_error_before_reading(tmp_path: Path) -> None:
    cfg = write_run(tmp_path, "http://127.0.0.1:9/v1")
    cfg.write_text(cfg.read_text().replace("[deidentify]\nenabled = false",
                                           '[deidentify]\nspacy_model = "en_core_web_nonexistent"'))
    code, out = cli("run", str(cfg), "--stage", "sample", "--no-progress")
    text = " ".join(out.split())
    assert code == 2 and "deidentify.spacy_model = 'en_core_web_nonexistent': not installed" in text
