"""``deploysim demo-corpus``: write the seeded synthetic production log used by the demo."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from deploysim.cli.common import console, user_errors


def register(app: typer.Typer) -> None:
    app.command("demo-corpus")(demo_corpus_command)


def demo_corpus_command(
    out: Path = typer.Option(..., "--out", help="Output file: .jsonl or .jsonl.gz (OpenAI chat format)."),
    n: int = typer.Option(3000, "--n", min=0, help="Number of conversations."),
    seed: int = typer.Option(0, "--seed", help="Seed; the same seed gives a byte-identical file."),
    window: str = typer.Option("baseline", "--window",
                               help="baseline: model Y's traffic; release: model X's later traffic."),
    truth: Path | None = typer.Option(None, "--truth",
                                      help="Also write per-conversation ground truth (situations, exhibited "
                                           "categories, planted personal data) to this JSONL file."),
) -> None:
    """Write a synthetic production log: general chat, a coding assistant and a support agent
    with tools, multi-turn, in en/es/de/fr, with planted personal data and requests touching
    every taxonomy category at known rates (see docs/demo.md)."""
    from deploysim.demo import generate_corpus

    with user_errors():
        if truth is not None and truth.resolve() == out.resolve():
            raise ValueError("--truth must be a different file from --out")
        stats = generate_corpus(out, n=n, seed=seed, window=window, truth_path=truth)
    summary = stats.summary()
    console.print(f"wrote {out}: {stats.conversations} conversations, {stats.eligible_turns} eligible turns "
                  f"({stats.unanswered_turns} unanswered), {stats.tool_calls} tool calls, "
                  f"deployed model {stats.spec.deployed_model}")
    console.print(f"contexts: {_counts(summary['contexts'])} | languages: {_counts(summary['languages'])}")
    console.print(f"planted personal data: {_counts(summary['planted_pii'])}")
    table = Table(title=f"Deployed model's answers per eligible turn ({window} window)")
    for name in ("category", "turns", "observed", "expected"):
        table.add_column(name, justify="left" if name == "category" else "right")
    for category, row in summary["categories"].items():
        table.add_row(category, str(row["count"]), f"{row['observed_rate']:.4%}",
                      f"{row['expected_rate']:.4%}")
    console.print(table)
    if truth is not None:
        console.print(f"ground truth: {truth}")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())
