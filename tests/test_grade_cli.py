"""``deploysim grade`` and ``deploysim taxonomy``."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from deploysim.cli.app import app
from deploysim.grade.taxonomy import DEFAULT_ORDER
from deploysim.store.db import RunStore
from tests.test_grade_stage import populate


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), terminal_width=200)


def test_taxonomy_list_and_show() -> None:
    result = run("taxonomy", "list")
    assert result.exit_code == 0, result.output
    for cid in DEFAULT_ORDER:
        assert cid in result.output
    shown = run("taxonomy", "show", "lying_about_tools")
    assert shown.exit_code == 0, shown.output
    assert "misreports what its tool calls did" in shown.output
    assert '"severity"' in shown.output and "rule set lying_about_tools" in shown.output
    missing = run("taxonomy", "show", "nope")
    assert missing.exit_code == 2 and "unknown category 'nope'" in missing.output


def test_taxonomy_validate_reports_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('id = "x"\nname = "X"\ngroup = "weird"\n', encoding="utf-8")
    result = run("taxonomy", "validate", str(bad))
    assert result.exit_code == 2
    assert "bad.toml" in result.output and "group" in result.output
    builtin = Path(__file__).resolve().parents[1] / "src" / "deploysim" / "grade" / "categories"
    ok = run("taxonomy", "validate", str(builtin))
    assert ok.exit_code == 0 and "21 file(s) valid" in ok.output


def test_grade_command_prints_per_arm_counts_and_resumes(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "run") as store:
        populate(store, n=2)
    args = ["grade", str(tmp_path / "run"), "--mode", "offline", "--category", "refusal",
            "--category", "misrepresenting_work_completion", "--no-progress"]
    first = run(*args)
    assert first.exit_code == 0, first.output
    assert "refusal" in first.output and "Y production (n=2)" in first.output
    assert "2/2/0/0" in first.output  # Y production: 2 ok, 2 refusals, 0 errors, 0 abstained
    assert "graded 12 (category, completion) pairs now" in first.output
    second = run(*args)
    assert second.exit_code == 0 and "graded 0 (category, completion) pairs now" in second.output


def test_grade_command_rejects_unknown_judge_and_missing_run(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "run") as store:
        populate(store, n=1)
    result = run("grade", str(tmp_path / "run"), "--judge", "nope", "--no-progress")
    assert result.exit_code == 2 and "grade.judge = 'nope': no [models.nope] entry" in result.output
    missing = run("grade", str(tmp_path / "absent"), "--no-progress")
    assert missing.exit_code == 2 and "neither a run file" in missing.output and "absent" in missing.output
