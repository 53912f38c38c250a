"""The HTML report and report.json are built from the store and escape transcript text."""

from __future__ import annotations

import json
from pathlib import Path

from deploysim.records import Comparison, Estimate
from deploysim.report.html import write_report
from deploysim.store import RunStore
from tests.test_store import make_completion, make_judgment, make_prefix


def test_report_shows_estimates_and_escapes_text(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "run") as store:
        prefixes = [make_prefix(i) for i in range(3)]
        store.put_prefixes(prefixes)
        comps = [make_completion(p) for p in prefixes]
        store.put_completions(comps)
        store.put_judgments([make_judgment(comps[0], True)])
        store.put_estimates([Estimate(id=Estimate.make_id("hate", "x_on_y", "g1"), category="hate",
                                      arm="x_on_y", grader_hash="g1", n=3, k=1, failures=0, rate=1 / 3,
                                      wilson=(0.06, 0.79), jeffreys=(0.05, 0.8), floor=0.99)])
        store.put_comparisons([Comparison(id="c1", category="hate", arm_a="x_on_y", arm_b="y_prod",
                                          grader_hash="g1", ratio=2.0, ratio_interval=(0.5, 8.0),
                                          test="fisher", p_value=0.04, significant=True, alpha=0.1)])
        store.set_meta("privacy_policy", {"allow_raw_to_remote": False})
        # hostile text must be escaped, not executed
        evil = make_prefix(99).model_copy(update={"id": "evil"})
        evil = evil.model_copy(update={"messages": (evil.messages[0].model_copy(
            update={"content": "<script>alert(1)</script>"}),)})
        store.put_prefixes([evil])
        files = write_report(store)
    html = files.html.read_text()
    assert "hate" in html and "33.33%" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)" in html
    assert "refused" in html  # the privacy policy that applied is stated
    data = json.loads(files.json.read_text())
    assert data["prefixes"] == 4
    assert data["estimates"][0]["k"] == 1
    assert data["comparisons"][0]["significant"] is True
    assert data["transcripts_shown"] == 4
