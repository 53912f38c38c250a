"""Sampling from files end to end: uniformity through the reader, strata, the run store, CLI."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from scipy.stats import chisquare
from typer.testing import CliRunner

from deploysim.cli.app import app
from deploysim.records import Prefix
from deploysim.registry import Registry
from deploysim.sample.config import SampleConfig
from deploysim.sample.sampler import sample_prefixes
from deploysim.sample.stage import SampleInputs, sample_to_store
from deploysim.sources.config import SourceConfig
from deploysim.store.db import RunStore

CONTEXTS = ["general_chat", "coding_assistant", "customer_support"]


def row(i: int, turns: int, **meta: Any) -> dict[str, Any]:
    msgs: list[dict[str, Any]] = [{"role": "system", "content": "sys"}] if i % 3 == 0 else []
    for t in range(turns):
        msgs += [{"role": "user", "content": f"u{i}.{t}"}, {"role": "assistant", "content": f"a{i}.{t}"}]
    return {"id": f"c{i}", "model": "prod-y", "messages": msgs, "metadata": meta}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """12 conversations, 1-4 turns, three contexts, two languages, plus one bad row."""
    rows = [orjson.dumps(row(i, 1 + i % 4, product_context=CONTEXTS[i % 3], language="en" if i % 2 else "de"))
            for i in range(12)]
    rows.insert(5, b'{"messages": [{"role": "user"')
    path = tmp_path / "traffic.jsonl"
    path.write_bytes(b"\n".join(rows) + b"\n")
    return path


def turns_of(sample: Any) -> list[tuple[str, int]]:
    return [(p.conversation_id, p.turn_index) for p in sample]


def test_uniform_through_the_reader_chi_square(corpus: Path) -> None:
    src = [SourceConfig(path=corpus)]
    counts: Counter[tuple[str, int]] = Counter()
    runs, k = 400, 3
    for seed in range(runs):
        counts.update(turns_of(sample_prefixes(src, SampleConfig(n=k, seed=seed))))
    population = sample_prefixes(src, SampleConfig(n=1)).report.population
    assert population == sum(1 + i % 4 for i in range(12)) == len(counts)
    assert chisquare(list(counts.values())).pvalue > 0.001


def test_reproducible_and_report_reconciles(corpus: Path, tmp_path: Path) -> None:
    src = [SourceConfig(path=corpus)]
    a = sample_prefixes(src, SampleConfig(n=8, seed=3), quarantine_dir=tmp_path / "q")
    b = sample_prefixes(src, SampleConfig(n=8, seed=3))
    ids = [p.id for p in a]
    assert ids == [p.id for p in b] and len(set(ids)) == 8
    assert ids != [p.id for p in sample_prefixes(src, SampleConfig(n=8, seed=4))]
    (st,) = a.report.sources
    assert (st["read"], st["accepted"], st["quarantined"]) == (13, 12, 1)
    assert a.report.source_lines() == ["traffic.jsonl: read 13 = accepted 12 + quarantined 1"]
    assert Path(st["quarantine_path"]).read_text().count("\n") == 1


def test_proportional_strata_read_twice_and_match_allocation(corpus: Path) -> None:
    cfg = SampleConfig(n=10, seed=1, stratify_by="product_context")
    sample = sample_prefixes([SourceConfig(path=corpus)], cfg)
    report = sample.report
    assert report.passes == 2 and report.sampled == 10
    sizes = {c: sum(1 + i % 4 for i in range(12) if CONTEXTS[i % 3] == c) for c in CONTEXTS}
    assert {h: s.population for h, s in report.strata.items()} == sizes
    assert Counter(p.stratum for p in sample) == {h: s.quota for h, s in report.strata.items()}
    assert all(p.context.product_context == p.stratum for p in sample)


def test_quotas_filters_and_cap(corpus: Path) -> None:
    src = [SourceConfig(path=corpus)]
    quota = sample_prefixes(src, SampleConfig(stratify_by="language", quotas={"en": 3}, seed=2))
    assert quota.report.passes == 1 and [p.context.language for p in quota] == ["en"] * 3
    assert quota.report.outside_quotas == sum(1 + i % 4 for i in range(12) if i % 2 == 0)
    german = sample_prefixes(src, SampleConfig(n=50, languages=["de"], min_turns=2))
    assert {p.context.language for p in german} == {"de"}
    assert len(german) == sum(1 + i % 4 for i in range(12) if i % 2 == 0 and i % 4 >= 1)
    capped = sample_prefixes(src, SampleConfig(n=50, cap_per_conversation=1))
    assert len(capped) == 12 and len({p.conversation_id for p in capped}) == 12


def test_sample_to_store_writes_prefixes_completions_sources(corpus: Path, tmp_path: Path) -> None:
    src = [SourceConfig(path=corpus, name="prod")]
    cfg = SampleConfig(n=6, seed=9)

    def mark(prefixes: Any) -> Any:  # stands in for the de-identifier
        for p in prefixes:
            context = p.context.model_copy(update={"deidentified": "deidentified"})
            yield p.model_copy(update={"context": context})

    formats = Registry.discover().formats

    def inputs(cfg: SampleConfig, transform: Any = None,
               qdir: Path = tmp_path / "run" / "quarantine") -> SampleInputs:
        return SampleInputs(sources=src, config=cfg, formats=formats, transform=transform,
                            quarantine_dir=qdir,
                            production_arm="y_prod")

    with RunStore.open(tmp_path / "run") as store:
        report = sample_to_store(inputs(cfg, mark), store)
        stored = list(store.iter_prefixes())
        expected = [p.id for p in sample_prefixes(src, cfg)]
        assert [p.id for p in stored] == expected  # sampling order kept
        assert {p.context.deidentified for p in stored} == {"deidentified"}
        prod = list(store.iter_completions(arm="y_prod"))
        assert {c.prefix_id for c in prod} == set(expected)
        settings = store.get_request_settings([c.request.settings_id for c in prod if c.request])
        assert all(c.request is not None and settings[c.request.settings_id].provider == "log" for c in prod)
        by_prefix = {p.id: p for p in stored}
        for c in prod:
            cont = by_prefix[c.prefix_id].continuation
            assert cont is not None and c.message == cont.response and c.model == "prod-y"
        (source,) = store.sources()
        counts = (source["id"], source["read"], source["accepted"], source["quarantined"])
        assert counts == ("prod", 13, 12, 1)
        assert store.quarantine_count() == 1 and report.complete
        assert store.stage_reports("sample")["report"]["sampled"] == 6
        again = sample_to_store(inputs(cfg), store)
        assert again.config_hash == report.config_hash and store.count_prefixes() == 6
        with pytest.raises(ValueError, match="already holds a sample"):
            sample_to_store(inputs(SampleConfig(n=7), qdir=tmp_path / "q"), store)


def test_cli_ingest_and_sample(corpus: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["ingest", str(corpus), "--quarantine-dir", str(tmp_path / "q")])
    assert out.exit_code == 0, out.output
    assert "traffic.jsonl: read 13 = accepted 12 + quarantined 1" in out.output
    assert "line 6: invalid JSON" in out.output
    run = tmp_path / "run"
    out = runner.invoke(app, ["sample", str(corpus), "--run-dir", str(run), "-n", "5", "--stratify-by",
                              "product_context", "--seed", "4"])
    assert out.exit_code == 0, out.output
    assert "read 13 = accepted 12 + quarantined 1" in out.output and "sampled 5 of 5" in out.output
    with RunStore.open(run, create=False) as store:
        assert store.count_prefixes() == 5 and store.count_completions(arm="y_prod") == 5
        assert store.deidentified_counts() == {"deidentified": 5}  # the default [deidentify] applies
    bad = runner.invoke(app, ["sample", str(corpus), "--run-dir", str(tmp_path / "r2"), "--quota", "oops"])
    assert bad.exit_code == 2 and "NAME=COUNT" in " ".join(bad.output.split())
    missing = runner.invoke(app, ["ingest", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "no such file" in " ".join(missing.output.split())


def test_cli_sample_from_run_config(corpus: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[run]\ndir = "out"\n\n[[sources]]\npath = "{corpus.name}"\n\n'
                   '[sample]\nn = 4\nseed = 2\n')
    out = CliRunner().invoke(app, ["sample", "--config", str(cfg)])
    assert out.exit_code == 0, out.output
    with RunStore.open(tmp_path / "out", create=False) as store:
        assert store.count_prefixes() == 4


def test_shared_data_agentic_prefixes(shared_data: Path) -> None:
    src = [SourceConfig(path=shared_data / "tau-bench" / "gpt-4o-airline.json"),
           SourceConfig(path=shared_data / "oasst-sample" / "en_100_tree.jsonl")]
    sample = sample_prefixes(src, SampleConfig(n=40, seed=5))
    prefixes: list[Prefix] = list(sample)
    assert len(prefixes) == 40
    assert all(p.messages[-1].role == "user" and p.continuation is not None for p in prefixes)
    steps = [m for p in prefixes for m in p.continuation.steps if m.role == "tool"]  # type: ignore[union-attr]
    assert steps and {m.provenance for m in steps} == {"real"}
    assert any(p.context.tools for p in prefixes)
