"""`deploysim run` end to end (mock endpoint on loopback), resume, validation; the offline demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploysim.assemble import RUN_STAGES, VALIDATE_STAGES, run_stages
from deploysim.cli.app import app
from deploysim.config import load_config
from deploysim.demo.corpus import generate_corpus
from deploysim.forecast.locked import verify
from deploysim.models.mock_server import MockConfig, MockServerThread
from deploysim.sources.config import SourceConfig
from deploysim.store import RunStore

N_PREFIXES = 24


def write_config(tmp_path: Path, base_url: str) -> Path:
    generate_corpus(tmp_path / "baseline.jsonl.gz", n=300, seed=3, window="baseline")
    path = tmp_path / "run.toml"
    path.write_text(f"""
[run]
name = "pipeline-test"
dir = "run"

[[sources]]
path = "baseline.jsonl.gz"

[sample]
n = {N_PREFIXES}
seed = 5

[models.candidate]
provider = "openai"
base_url = "{base_url}"
model = "cand"
params = {{ temperature = 0.7, max_tokens = 32 }}

[models.incumbent]
provider = "openai"
base_url = "{base_url}"
model = "inc"

[simulate]
candidate = "candidate"
control = "incumbent"

[grade]
mode = "offline"
""")
    return path


def test_run_resume_and_validate(tmp_path: Path) -> None:
    with MockServerThread(MockConfig(latency_s=0.0)) as server:
        cfg = load_config(write_config(tmp_path, server.base_url))
        results = run_stages(cfg, RUN_STAGES, log=lambda _: None)
        assert [r.stage for r in results] == ["sample", "challenge", "simulate", "grade", "estimate",
                                              "forecast", "report"]
        assert [r.status for r in results] == ["ran", "skipped", "ran", "ran", "ran", "ran", "ran"]
        with RunStore.open(cfg.run.dir, create=False) as store:
            assert store.count_prefixes() == N_PREFIXES
            assert store.deidentified_counts() == {"deidentified": N_PREFIXES}
            for arm in ("x_on_y", "y_on_y", "y_prod"):
                assert store.count_completions(arm=arm, status="ok") == N_PREFIXES
            counts = store.judgment_counts()
            categories = {c.category for c in counts}
            assert len(categories) == 21
            assert sum(c.ok + c.errors + c.abstained for c in counts) == 21 * 3 * N_PREFIXES
            judged = len(list(store.iter_judgments()))
            assert {e.arm for e in store.estimates()} == {"x_on_y", "y_on_y", "y_prod"}
            assert store.get_meta("privacy_policy")["allow_raw_to_remote"] is False
        forecast = cfg.run.dir / "forecast.json"
        payload, digest = verify(forecast)
        assert len(payload.categories) == 21
        # the forecast says exactly what measured it: every grader's full identity
        assert set(payload.graders) == set(payload.grader_hashes.values())
        assert all(g["identity"] and g["category"] in payload.grader_hashes for g in payload.graders.values())
        assert (cfg.run.dir / "report.html").exists()
        manifest = json.loads((cfg.run.dir / "export" / "manifest.json").read_text())
        assert manifest["rows"]["prefixes"] == N_PREFIXES

        # resume: nothing is redone or duplicated, the locked forecast is kept
        requests_before = server.stats.requests
        assert requests_before == 2 * N_PREFIXES  # X→Y and Y→Y; offline graders send nothing
        run_stages(cfg, RUN_STAGES, log=lambda _: None)
        with RunStore.open(cfg.run.dir, create=False) as store:
            assert store.count_completions() == 3 * N_PREFIXES
            assert len(list(store.iter_judgments())) == judged
        assert verify(forecast)[1] == digest
        assert server.stats.requests == requests_before

        # release: X's production window is graded with the same graders and scored
        generate_corpus(tmp_path / "release.jsonl.gz", n=300, seed=4, window="release")
        released = cfg.model_copy(update={"validate_": cfg.validate_.model_copy(update={
            "production": [SourceConfig(path=tmp_path / "release.jsonl.gz")], "n": 40})})
        reports = run_stages(released, VALIDATE_STAGES, log=lambda _: None)
        assert [r.stage for r in reports] == ["release", "simulate", "grade", "estimate", "validate",
                                              "report"]
        outcome = next(r.data["outcome"] for r in reports if r.stage == "validate")
        with RunStore.open(cfg.run.dir) as store:
            assert store.count_prefixes(pool="release") == 40
            assert store.count_completions(arm="x_prod", status="ok") == 40
            assert any(e.arm == "x_prod" for e in store.estimates())
        card = outcome.scorecard
        assert set(card.summary) == {"simulation", "simulation_direct", "previous_production"}
        assert all(r.n_x == 40 for r in card.rows)
        assert json.loads(outcome.path.read_text())["forecast_hash"] == digest


def test_run_command_reports_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[sample]\nn = -1\n")
    result = CliRunner().invoke(app, ["run", str(bad)])
    assert result.exit_code == 2
    assert "sample.n" in result.output and str(bad) in result.output.replace("\n", "")


def test_every_command_has_help() -> None:
    runner = CliRunner()
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0
    commands = ["ingest", "sample", "deidentify", "simulate", "grade", "graders", "taxonomy", "estimate",
                "plan", "tail", "forecast", "validate", "challenge", "run", "check", "report", "export",
                "demo",
                "demo-corpus"]
    for name in commands:
        assert name in top.output, name
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage" in result.output
    assert runner.invoke(app, ["--version"]).output.startswith("deploysim ")


@pytest.mark.slow
@pytest.mark.embedded_model
def test_offline_demo_end_to_end(tmp_path: Path) -> None:
    """What `make demo` runs, at a tiny size: embedded model for X→Y, Y→Y and the release."""
    from deploysim.demo.pipeline import DemoSettings, run_demo

    settings = DemoSettings(out=tmp_path / "demo", conversations=200, prefixes=4, max_tokens=8, seed=1)
    result = run_demo(settings, progress=False, log=lambda _: None)
    assert result.report.exists() and result.scorecard_path.exists()
    verify(result.forecast)
    assert "simulation" in result.scorecard.summary
    html = result.report.read_text()
    assert "Post-release scorecard" in html and "Estimated rates" in html
    with RunStore.open(result.run_dir, create=False) as store:
        for arm in ("x_on_y", "y_on_y", "x_prod"):
            assert store.count_completions(arm=arm, status="ok") == 4
