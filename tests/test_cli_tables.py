"""Summaries read well outside a terminal: piped into an 80-column log, every cell is there and
no line is wider than the page; and every summarising command can emit JSON instead."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from deploysim.cli.app import app
from deploysim.cli.tables import PlainTable
from deploysim.store import RunStore
from tests.test_estimate_stage import build_records, fill


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    with RunStore.open(tmp_path / "run") as s:
        fill(s, build_records(n_prefixes=80))
    return tmp_path / "run"


def test_a_wide_table_is_split_into_column_groups_that_fit() -> None:
    table = PlainTable("wide", ["category", "arm", *[f"column number {i}" for i in range(9)]], keys=2,
                       right={f"column number {i}" for i in range(9)})
    table.add_row("misrepresenting_work_completion", "X→Y", *[f"{i * 1.5:.3f} (0.1–0.9)" for i in range(9)])
    lines = table.plain_lines(80)
    assert max(len(line) for line in lines) <= 80
    text = "\n".join(lines)
    assert all(f"column number {i}" in text for i in range(9)) and "(1/" in text
    assert text.count("misrepresenting_work_completion") == int(lines[1].strip("()").split("/")[1])


def test_a_single_too_wide_cell_wraps_inside_its_column() -> None:
    table = PlainTable("", ["key", "note"])
    table.add_row("a", "word " * 40)
    lines = table.plain_lines(60)
    assert max(len(line) for line in lines) <= 60 and sum("word" in line for line in lines) > 1


def test_the_estimate_table_piped_at_80_columns(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    out = CliRunner().invoke(app, ["estimate", str(run_dir)])
    assert out.exit_code == 0, out.output
    table_lines = [line for line in out.output.splitlines() if not line.startswith(("note:", "sig:", "wrote",
                                                                                    "["))]
    assert max(len(line) for line in table_lines) <= 80, [line for line in table_lines if len(line) > 80]
    for header in ("rate", "95% CI", "floor", "pending", "abstained", "p Fisher"):
        assert header in out.output
    assert out.output.count("hate") >= 3 and "X→Y" in out.output and "0.0" in out.output


@pytest.mark.parametrize("args", [["estimate", "{run}", "--json"], ["taxonomy", "list", "--json"],
                                  ["run", "{cfg}", "--stage", "estimate", "--json"], ["check", "{cfg}",
                                                                                      "--json"]])
def test_summarising_commands_emit_json(args: list[str], run_dir: Path) -> None:
    cfg = run_dir.parent / "run.toml"
    cfg.write_text('[run]\ndir = "run"\n')
    out = CliRunner().invoke(app, [a.replace("{run}", str(run_dir)).replace("{cfg}", str(cfg))
                                                   for a in args])
    assert out.exit_code == 0, out.output
    data = orjson.loads(out.stdout)
    assert data
