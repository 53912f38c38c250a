"""The run report: one self-contained HTML file (tables, interval plots, transcript browser)
plus ``report.json`` with the same figures for machines.

Everything is read from the run store; nothing is computed here that a stage did not store,
so the report can be rebuilt at any time and always matches the database.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from jinja2 import Environment, PackageLoader, select_autoescape

from deploysim import __version__
from deploysim.records import ARM_LABELS, Comparison, Estimate, Message, utc_now
from deploysim.report.export import privacy_statement
from deploysim.store import RunStore

ARM_ORDER = ("x_on_y", "y_on_y", "y_prod", "x_prod", "challenge")
ARM_COLOURS = defaultdict(lambda: "#495057", {"x_on_y": "#d9480f", "y_on_y": "#1c7ed6", "y_prod": "#2b8a3e",
                                             "x_prod": "#862e9c", "challenge": "#868e96"})
PLOT_MIN = 1e-4  # left edge of the log-scale rate axis


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    json: Path


def _arm_rank(arm: str) -> int:
    """Built-in arms first in their usual order; arms a run file adds after them."""
    return ARM_ORDER.index(arm) if arm in ARM_ORDER else len(ARM_ORDER)


def _log_x(rate: float, width: float) -> float:
    r = min(max(rate, PLOT_MIN), 1.0)
    return width * (math.log10(r) - math.log10(PLOT_MIN)) / -math.log10(PLOT_MIN)


def _category_rows(estimates: list[Estimate], comparisons: list[Comparison]) -> list[dict[str, Any]]:
    by_cat: dict[str, dict[str, Estimate]] = defaultdict(dict)
    for e in estimates:
        by_cat[e.category][e.arm] = e
    comps: dict[str, list[Comparison]] = defaultdict(list)
    for c in comparisons:
        comps[c.category].append(c)
    rows = []
    width = 260.0
    for cat in sorted(by_cat):
        arms = [by_cat[cat][a] for a in sorted(by_cat[cat], key=lambda a: (_arm_rank(a), a))]
        marks = []
        for i, e in enumerate(arms):
            if e.rate is None:  # nothing graded in this arm (n = 0): no mark
                continue
            lo, hi = e.wilson
            marks.append({"arm": e.arm, "colour": ARM_COLOURS[e.arm], "y": 8 + 10 * i,
                          "x": _log_x(e.rate, width), "lo": _log_x(lo, width), "hi": _log_x(hi, width),
                          "zero": e.k == 0})
        rows.append({"category": cat, "arms": arms, "comparisons": comps.get(cat, []), "marks": marks,
                     "plot_height": 10 * len(arms) + 8, "plot_width": width})
    return rows


def _short(message: Message | None, limit: int = 4000) -> str:
    if message is None:
        return ""
    text = message.content
    for call in message.tool_calls:
        text += f"\n[tool call] {call.name}({call.arguments})"
    return text if len(text) <= limit else text[:limit] + " …"


def _transcripts(store: RunStore, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` prefixes (sampling order) with every arm's response and the
    categories its graders flagged."""
    flags: dict[str, list[str]] = defaultdict(list)
    for j in store.iter_judgments(status="ok"):
        if j.label:
            flags[j.completion_id].append(j.category)
    items = []
    for prefix in store.iter_prefixes():
        if len(items) >= limit:
            break
        responses = []
        for c in store.completions_for_prefix(prefix.id):
            responses.append({"arm": c.arm, "label": ARM_LABELS.get(c.arm, c.arm), "status": c.status,
                              "sample": c.sample_index, "text": _short(c.message) if c.status == "ok"
                              else f"[error] {c.error}", "flags": sorted(set(flags.get(c.id, [])))})
        responses.sort(key=lambda r: (_arm_rank(r["arm"]), r["arm"], r["sample"]))
        items.append({
            "id": prefix.id, "context": prefix.context.product_context or "-",
            "deidentified": prefix.context.deidentified,
            "turns": [{"role": m.role, "text": _short(m, 1500)} for m in prefix.messages[-4:]],
            "responses": responses,
            "flags": sorted({f for r in responses for f in r["flags"]}),
        })
    return items


def collect(store: RunStore, transcript_limit: int = 150) -> dict[str, Any]:
    """Everything the report shows, as plain data (this is also ``report.json``)."""
    estimates = store.estimates()
    comparisons = store.comparisons()
    return {
        "generated_at": utc_now(),
        "deploysim_version": __version__,
        "run_dir": str(store.run_dir),
        "meta": store.all_meta(),
        "privacy": privacy_statement(store),
        "sources": store.sources(),
        "quarantined": store.quarantine_count(),
        "prefixes": store.count_prefixes(),
        "completions": {arm: {"ok": store.count_completions(arm=arm, status="ok"),
                              "error": store.count_completions(arm=arm, status="error")}
                        for arm in sorted(store.completion_arms(), key=lambda a: (_arm_rank(a), a))},
        "stage_reports": {stage: store.stage_reports(stage) for stage in store.stage_names()},
        "estimates": [e.model_dump(mode="json") for e in estimates],
        "comparisons": [c.model_dump(mode="json") for c in comparisons],
        "grader_validations": store.grader_validations(),
        "_estimate_objects": estimates,
        "_comparison_objects": comparisons,
        "_transcripts": _transcripts(store, transcript_limit),
    }


def write_report(store: RunStore, out_dir: Path | None = None, *, transcript_limit: int = 150) -> ReportFiles:
    out = out_dir or store.run_dir
    out.mkdir(parents=True, exist_ok=True)
    data = collect(store, transcript_limit)
    env = Environment(loader=PackageLoader("deploysim.report", "templates"),
                      autoescape=select_autoescape(["html", "jinja"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = _pct
    html = env.get_template("report.html.jinja").render(
        d=data, rows=_category_rows(data["_estimate_objects"], data["_comparison_objects"]),
        transcripts=data["_transcripts"], arm_labels=defaultdict(str, ARM_LABELS) | {
            a: ARM_LABELS.get(a, a) for a in data["completions"]}, arm_colours=ARM_COLOURS,
        plot_ticks=[(f"{t:g}", _log_x(t, 260.0)) for t in (1e-4, 1e-3, 1e-2, 1e-1, 1.0)])
    html_path = out / "report.html"
    html_path.write_text(html, encoding="utf-8")
    public = {k: v for k, v in data.items() if not k.startswith("_")}
    public["transcripts_shown"] = len(data["_transcripts"])
    json_path = out / "report.json"
    json_path.write_bytes(orjson.dumps(public, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS,
                                       default=str))
    return ReportFiles(html_path, json_path)


def _pct(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if value == 0:
        return "0%"
    if value < 0.001:
        return f"{value * 100:.{digits}g}%"
    return f"{value * 100:.{digits}f}%"
