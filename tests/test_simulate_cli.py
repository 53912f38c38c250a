"""``deploysim simulate`` from a run file and from a run directory, with a budget stop."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from deploysim.cli.app import app
from deploysim.models.mock_server import MockConfig, MockServerThread
from deploysim.records import Message, Prefix
from deploysim.store.db import RunStore


def make_run(root: Path, base_url: str) -> Path:
    with RunStore.open(root / "run") as store:
        store.put_prefixes(Prefix(id=Prefix.make_id(f"c{i}", 0, m), conversation_id=f"c{i}", turn_index=0,
                                  messages=m)
                           for i in range(40) for m in [(Message(role="user", content=f"hello {i}"),)])
    cfg = root / "run.toml"
    cfg.write_text(f"""[run]
dir = "run"
[models.cand]
provider = "openai"
model = "cand"
base_url = "{base_url}"
params = {{ max_tokens = 100 }}
prices = {{ input_per_mtok = 100.0, output_per_mtok = 100.0 }}
[simulate]
candidate = "cand"
concurrency = 4
""")
    return cfg


def test_budget_stop_exits_3_and_a_rerun_finishes(tmp_path: Path) -> None:
    runner = CliRunner()
    with MockServerThread(MockConfig()) as srv:
        cfg = make_run(tmp_path, srv.base_url)
        stopped = runner.invoke(app, ["simulate", str(cfg), "--budget", "0.05", "--no-progress"])
        assert stopped.exit_code == 3, stopped.output
        assert "stopped: budget of $0.0500 reached" in stopped.output
        with RunStore.open(tmp_path / "run", create=False) as store:
            done = store.count_completions(status="ok")
            assert 0 < done < 40 and store.completion_spend()[2] <= 0.05
        finished = runner.invoke(app, ["simulate", str(cfg), "--no-progress"])
        assert finished.exit_code == 0, finished.output
        assert f"x_on_y cand: {40 - done} ok, 0 errors" in finished.output


def test_run_directory_without_a_saved_config_uses_the_defaults(tmp_path: Path) -> None:
    RunStore.open(tmp_path / "empty").close()
    result = CliRunner().invoke(app, ["simulate", str(tmp_path / "empty"), "--arm", "y_on_y"])
    assert result.exit_code == 2 and "simulate.control" in result.output
    missing = CliRunner().invoke(app, ["simulate", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2
