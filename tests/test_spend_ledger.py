"""Spend across invocations: the write-ahead ledger, its folding into the run database, and a
``kill -9`` mid-simulation whose requests in flight are counted (not paid twice unseen)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploysim.engine.ledger import SpendLedger, SpendTotals, read_ledger
from deploysim.models.mock_server import MockConfig, MockServerThread
from deploysim.records import Message, Prefix, PrefixContext
from deploysim.store.db import RunStore


def test_ledger_round_trip_counts_answers_and_losses(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    led = SpendLedger(path, stage="simulate", scope="x:1", invocation="inv")
    a, b, c = led.sent(0.5), led.sent(0.25), led.sent(0.125)
    led.answered(a, 100, 20, 0.01)
    led.answered(b)  # an error status: answered, nothing paid
    led.answered(b, 1, 1, 1.0)  # a duplicate answer is ignored
    snap = led.snapshot()
    assert (snap.requests, snap.answered, snap.lost_in_flight, snap.lost_reserved_usd) == (3, 2, 1, 0.125)
    # what a process killed now leaves behind reads the same from the file
    header, read = read_ledger(path)
    assert header["stage"] == "simulate" and header["scope"] == "x:1" and header["pid"] == os.getpid()
    assert (read.requests, read.answered, read.input_tokens, read.output_tokens) == (3, 2, 100, 20)
    assert read.cost_usd == pytest.approx(0.01) and read.lost_in_flight == 1
    assert read.lost_reserved_usd == pytest.approx(0.125) and read.worst_case_usd == pytest.approx(0.135)
    led.answered(c, 5, 5, 0.002)
    closed = led.close()
    assert closed.lost_in_flight == 0 and closed.cost_usd == pytest.approx(0.012)


def test_a_torn_or_garbled_line_never_unsends_a_request(tmp_path: Path) -> None:
    path = tmp_path / "b.log"
    led = SpendLedger(path, stage="grade", scope="judge:h", invocation="i2")
    n = led.sent(1.0)
    led.sent(2.0)
    with path.open("ab") as fh:
        fh.write(f"a {n} 10 zz 0.5\n".encode())  # garbled answer: the request stays unanswered
        fh.write(b"a 2 3 4 0.")  # torn: the writer died mid-line
    _, t = read_ledger(path)
    assert t.requests == 2 and t.answered == 0 and t.lost_in_flight == 2 and t.lost_reserved_usd == 3.0


def test_totals_add_up_field_by_field() -> None:
    a = SpendTotals(requests=2, cost_usd=0.5, lost_in_flight=1, invocations=1)
    b = SpendTotals(requests=3, cost_usd=0.25, invocations=1)
    assert (a + b) == SpendTotals(requests=5, cost_usd=0.75, lost_in_flight=1, invocations=2)


def test_store_folds_dead_ledgers_and_leaves_live_ones(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "run") as store:
        finished = store.open_ledger("simulate", "x:1")
        finished.answered(finished.sent(0.1), 10, 5, 0.05)
        live = store.open_ledger("simulate", "x:1")  # opening a second one must not fold the first
        live.sent(0.2)
        assert live.path.exists() and finished.path.exists()
        store.finish_ledger(finished)
        assert not finished.path.exists()
        # a ledger another live process is writing is left alone
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            other = store.ledger_dir / "other.log"
            other.write_bytes(b'h {"stage":"simulate","scope":"x:1","invocation":"o","pid":%d,"host":"%s"}\n'
                              b"s 1 9.0\n" % (sleeper.pid, os.uname().nodename.encode()))
            assert store.reconcile_ledgers() == 0 and other.exists()
        finally:
            sleeper.kill()
            sleeper.wait()
        # ...until it is dead: then its unanswered request is lost in flight
        assert store.reconcile_ledgers() == 1 and not other.exists()
        t = store.spend_totals("simulate", "x:1")
        assert (t.invocations, t.requests, t.answered, t.lost_in_flight) == (2, 2, 1, 1)
        assert t.cost_usd == pytest.approx(0.05) and t.lost_reserved_usd == pytest.approx(9.0)
        assert store.spend_totals("grade").invocations == 0
        store.finish_ledger(live)  # closed with a request unanswered: cancelled in flight
        assert store.spend_totals("simulate", "x:1").lost_in_flight == 2
        assert {r[0] for r in store._query("SELECT status FROM spend")} == {"finished", "killed"}


N = 120


def write_run(root: Path, base_url: str) -> Path:
    with RunStore.open(root / "run") as store:
        store.put_prefixes(
            Prefix(id=Prefix.make_id(f"c{i}", 0, msgs), conversation_id=f"c{i}", turn_index=0, messages=msgs,
                   context=PrefixContext(deidentified="synthetic"))
            for i in range(N) for msgs in [(Message(role="user", content=f"prompt number {i}"),)])
    config = root / "run.toml"
    config.write_text(f"""
[run]
dir = "run"

[models.cand]
provider = "openai"
model = "candidate-x"
base_url = "{base_url}"
params = {{ max_tokens = 32 }}
prices = {{ input_per_mtok = 1000.0, output_per_mtok = 2000.0 }}
concurrency = 8
adaptive = false

[simulate]
candidate = "cand"
write_batch = 4
""")
    return config


def simulate(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "from deploysim.cli.app import main; main()", "simulate",
                             str(config), "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_kill_9_in_flight_requests_are_counted_and_totals_span_invocations(tmp_path: Path) -> None:
    with MockServerThread(MockConfig(latency_s=0.3, seed=3)) as srv:
        cfg = write_run(tmp_path, srv.base_url)
        proc = simulate(cfg)
        deadline = time.monotonic() + 90
        while srv.stats.requests < 40 or srv.stats.in_flight < 4:
            assert proc.poll() is None and time.monotonic() < deadline, "no traffic to interrupt"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        time.sleep(0.5)  # let the server finish what was in flight
        sent_before_kill = srv.stats.requests
        proc = simulate(cfg)
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err.decode()
        received = srv.stats.requests

    with RunStore.open(tmp_path / "run", create=False) as store:
        rows = store._query("SELECT status, requests, answered, lost_in_flight, cost_usd FROM spend "
                            "WHERE stage = 'simulate'")
        [report] = store.stage_reports("simulate").values()
        stored_cost = store.completion_spend()[2]
        assert store.count_completions(status="ok") == N
    killed = [r for r in rows if r[0] == "killed"]
    assert len(rows) == 2 and len(killed) == 1
    _, k_requests, k_answered, k_lost, _ = killed[0]
    # every request the killed process put on the wire is in its ledger; the ones whose answer
    # it never read (at least those the server still held) are lost in flight, at most the
    # concurrency
    assert k_requests >= sent_before_kill and 1 <= k_lost <= 8 and k_answered + k_lost == k_requests
    # the resumed report sums both invocations: every request the server saw is accounted
    assert report["invocations"] == 2 and report["total_requests"] >= received
    assert report["total_requests"] == sum(r[1] for r in rows)
    assert report["lost_in_flight"] == k_lost and report["lost_reserved_usd"] > 0
    # answers that were paid for but never stored make the ledger cost exceed the stored cost
    assert report["total_cost_usd"] >= stored_cost - 1e-9 and stored_cost > 0
    assert report["cost_usd"] < report["total_cost_usd"]  # this invocation alone is less
    assert "lost in flight" in out.decode()
