"""Offline rule graders: speed, agreement with the demo corpus's planted truth, and XSTest.

    .venv/bin/python benchmarks/grade_rules.py [--n 2000] [--seed 1]

1. Speed of the rule graders alone (items x rule categories per second) on the Y production
   responses of ``--n`` demo conversations, and of the whole grade stage (store reads, resume
   check, batched writes) on the same items, then of a resumed run with nothing left to do.
2. Per rule category: recall on the answers where the demo generator planted that category, and
   the false-positive rate on all other answers. The demo's planted answers are synthetic, so these
   figures say whether a rule sees the behaviour as the demo writes it, not real-world accuracy.
3. With ``../shared/data`` present: the refusal rule against XSTest's human labels (5 models x 450
   completions; refusal = full or partial refusal) and the harmful-request patterns (which decide
   "benign" for over_refusal) against XSTest's safe / unsafe prompt labels. The rules were written
   while looking at XSTest, so these figures are optimistic.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from collections import Counter
from pathlib import Path

from deploysim.config import RunConfig
from deploysim.demo.corpus import iter_demo_conversations
from deploysim.grade.base import GradeItem
from deploysim.grade.config import GradeConfig
from deploysim.grade.rules import RuleGrader
from deploysim.grade.rules_content import harmful_request
from deploysim.grade.rules_text import refusal_phrase
from deploysim.grade.stage import grade_run
from deploysim.grade.taxonomy import load_taxonomy
from deploysim.records import Conversation
from deploysim.sample.prefixes import prefix_from_dict, production_completion
from deploysim.sources.formats.openai import convert
from deploysim.store.db import RunStore

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def demo_items(n: int, seed: int) -> Items:
    """(Y production item, categories the generator planted in that answer) per answered turn."""
    out = []
    for dc in iter_demo_conversations(n, seed=seed):
        conv = Conversation.model_validate(convert(dc.row, source="demo", index=0)[0]).model_dump(mode="json")
        for turn in dc.turns:
            if turn.answered:
                prefix = prefix_from_dict(conv, turn.message_index)
                completion = production_completion(prefix, "y_prod")
                assert completion is not None
                out.append((GradeItem(prefix=prefix, completion=completion), turn.categories))
    return out


Items = list[tuple[GradeItem, tuple[str, ...]]]


def rule_speed_and_agreement(items: Items, graders: list[RuleGrader]) -> None:
    tp, fn, fp, tn = Counter(), Counter(), Counter(), Counter()
    start = time.perf_counter()
    for it, truth in items:
        for g in graders:
            label = g.verdict(it).label
            planted = g.category in truth
            (tp if planted and label else fn if planted else fp if label else tn)[g.category] += 1
    elapsed = time.perf_counter() - start
    pairs = len(items) * len(graders)
    print(f"rule graders: {len(items)} items x {len(graders)} categories = {pairs} verdicts in "
          f"{elapsed:.2f}s -> {pairs / elapsed:,.0f} verdicts/s "
          f"({len(items) / elapsed:,.0f} items/s through all rules)")
    print(f"{'category':34s}{'recall (planted)':>20s}{'false-positive rate':>24s}")
    for g in graders:
        c = g.category
        pos, neg = tp[c] + fn[c], fp[c] + tn[c]
        recall = f"{tp[c]}/{pos} = {tp[c] / pos:.2f}" if pos else "no planted"
        print(f"{c:34s}{recall:>20s}{f'{fp[c]}/{neg} = {fp[c] / max(neg, 1):.4f}':>24s}")


def stage_speed(items: Items, categories: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp, RunStore.open(Path(tmp) / "run") as store:
        store.put_prefixes([it.prefix for it, _ in items])
        store.put_completions([it.completion for it, _ in items])
        cfg = RunConfig(grade=GradeConfig(mode="offline", categories=categories))
        start = time.perf_counter()
        report = grade_run(store, cfg, progress=False)
        elapsed = time.perf_counter() - start
        made = sum(r.graded_now for r in report.categories)
        print(f"grade stage (rules, {len(categories)} categories): {made} judgments in {elapsed:.2f}s -> "
              f"{made / elapsed:,.0f} judgments/s (reads, resume check and batched writes included)")
        start = time.perf_counter()
        again = grade_run(store, cfg, progress=False)
        print(f"resumed run with nothing to do: {sum(r.graded_now for r in again.categories)} judgments in "
              f"{time.perf_counter() - start:.2f}s")


def xstest() -> None:
    folder = SHARED / "xstest"
    if not folder.is_dir():
        print("XSTest: ../shared/data/xstest not present, skipped")
        return
    t = Counter()
    for path in sorted((folder / "model_completions").glob("*.csv")):
        with path.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                truth = row["final_label"].startswith(("2", "3"))
                pred = refusal_phrase(row["completion"] or "") is not None
                t[(truth, pred)] += 1
    tp, fp, fn = t[(True, True)], t[(False, True)], t[(True, False)]
    print(f"XSTest refusal rule vs human labels ({sum(t.values())} completions): precision "
          f"{tp / (tp + fp):.3f}, "
          f"recall {tp / (tp + fn):.3f} (full + partial refusals)")
    with (folder / "xstest_prompts.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    c = Counter((r["label"], harmful_request(r["prompt"]) is not None) for r in rows)
    unsafe, safe = c[("unsafe", True)] + c[("unsafe", False)], c[("safe", True)] + c[("safe", False)]
    print(f"XSTest harmful-request patterns: flag {c[('unsafe', True)]}/{unsafe} unsafe prompts "
          f"({c[('unsafe', True)] / unsafe:.2f}) and {c[('safe', True)]}/{safe} safe prompts "
          f"({c[('safe', True)] / safe:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="demo conversations")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    taxonomy = load_taxonomy()
    rule_categories = [c for c in taxonomy if c.grader.offline == "rules"]
    graders = [RuleGrader(c) for c in taxonomy if c.grader.rules]
    items = demo_items(args.n, args.seed)
    rule_speed_and_agreement(items, graders)
    stage_speed(items, [c.id for c in rule_categories])
    xstest()


if __name__ == "__main__":
    main()
