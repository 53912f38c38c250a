"""The analyzer is built offline; batching and the process pool change nothing; the command."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import orjson
import pytest
import spacy.cli
from typer.testing import CliRunner

from deploysim.cli.app import app
from deploysim.deidentify.batch import Detector, DetectorPool, split_long
from deploysim.deidentify.config import DeidentifyConfig
from deploysim.deidentify.engine import (
    LANGUAGE,
    DetectorUnavailable,
    build_analyzer,
    describe_detector,
    detector_hash,
)
from deploysim.sample.prefixes import make_prefix
from deploysim.store.db import RunStore
from tests.deid_planted import planted_conversations, planted_values

TEXTS = [
    "Hi, I'm Lina Artemova (lina.artemova@example.com), call +44 7700 900123.",
    "Card 4111 1111 1111 1111 and IBAN DE89 3704 0044 0532 0130 00.",
    "Ship to 1668 Glyn Street, Springfield, IL 62704.",
    "",
    "Nothing personal here at all.",
    "Daniel Thompson wrote from 203.0.113.7 with key sk-proj-Qm3x9TfLw2RbZ8kVn4YpJ7cH.",
] * 3


def _no_network(*args: object, **kwargs: object) -> None:
    raise AssertionError(f"network or download attempted: {args[:2]}")


def test_engine_builds_and_detects_without_any_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """Presidio downloads a spaCy model it cannot import, and its e-mail recognizer fetches the
    public-suffix list on first use: with every route out blocked, both must still work."""
    monkeypatch.setattr(spacy.cli, "download", _no_network)
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    monkeypatch.setattr(socket, "create_connection", _no_network)
    monkeypatch.setattr(socket, "getaddrinfo", _no_network)
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    analyzer = build_analyzer(DeidentifyConfig())
    results = analyzer.analyze(
        "Mail lina@example.co.uk or visit https://example.org", LANGUAGE, entities=["EMAIL_ADDRESS"]
    )
    assert [r.entity_type for r in results] == ["EMAIL_ADDRESS"]


def test_a_missing_model_is_refused_not_downloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spacy.cli, "download", _no_network)
    with pytest.raises(DetectorUnavailable, match="never downloads"):
        build_analyzer(DeidentifyConfig(spacy_model="en_core_web_lg"))


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(DeidentifyConfig(workers=1))


def test_batched_analysis_equals_presidios_per_text_loop(detector: Detector) -> None:
    def key(results: list) -> list:  # type: ignore[type-arg]
        return sorted((r.start, r.end, r.entity_type, round(r.score, 6)) for r in results)

    texts = [t for t in TEXTS if t]
    plain = [
        detector.analyzer.analyze(
            t, LANGUAGE, entities=detector.cfg.entities, score_threshold=detector.cfg.score_threshold
        )
        for t in texts
    ]
    batched = [results for _, _, results in detector.analyze_batch(texts)]
    assert [key(r) for r in batched] == [key(r) for r in plain]
    assert any(r for r in plain)


def test_process_pool_gives_the_same_findings(detector: Detector) -> None:
    with DetectorPool(DeidentifyConfig(workers=2, batch_size=4), min_texts_for_pool=1) as pool:
        assert pool.detect(TEXTS) == detector.detect(TEXTS)
        assert pool.describe() == detector.describe()


def test_long_texts_are_cut_at_line_breaks_and_offsets_kept(detector: Detector) -> None:
    filler = "word " * 50 + "\n"
    text = filler * 40 + "Contact lina.artemova@example.com please.\n" + filler * 4
    pieces = split_long(text, limit=3000)
    assert "".join(p for _, p in pieces) == text and all(len(p) <= 3000 for _, p in pieces)
    assert all(p.endswith("\n") for _, p in pieces[:-1])
    (found,) = detector.detect([text])
    assert [text[f.start : f.end] for f in found] == ["lina.artemova@example.com"]


def test_detector_hash_changes_with_the_configuration(detector: Detector) -> None:
    description = describe_detector(detector.cfg, detector.analyzer)
    other = describe_detector(detector.cfg.model_copy(update={"score_threshold": 0.5}), detector.analyzer)
    assert detector_hash(description) != detector_hash(other)
    assert any(
        r["name"] == "DeploysimStreetAddressRecognizer" and "rules" in r for r in description["recognizers"]
    )


def test_command_deidentifies_a_log_file(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(
        b"".join(orjson.dumps(c.model_dump(mode="json")) + b"\n" for c in planted_conversations())
    )
    out = tmp_path / "clean.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "deidentify",
            str(log),
            "--out",
            str(out),
            "--workers",
            "1",
            "--quarantine-dir",
            str(tmp_path / "q"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "3 conversations de-identified" in result.output and "replaced: PERSON" in result.output
    text = out.read_text(encoding="utf-8")
    assert len(text.splitlines()) == 3 and [v for v in planted_values() if v in text] == []
    report = orjson.loads((tmp_path / "clean.deid-report.json").read_bytes())
    assert report["counts"]["EMAIL_ADDRESS"] >= 3 and report["config_hash"]


def test_command_rewrites_a_run_and_reports_user_errors(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with RunStore.open(run) as store:
        store.put_prefixes([make_prefix(planted_conversations()[0], 1)])
    result = CliRunner().invoke(app, ["deidentify", "--run", str(run), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "rewrote 1 prefixes" in result.output and "{'deidentified': 1}" in result.output
    bad = CliRunner().invoke(
        app, ["deidentify", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o")]
    )
    assert bad.exit_code == 2 and "no such file" in " ".join(bad.output.split())
    both = CliRunner().invoke(app, ["deidentify"])
    assert both.exit_code == 2 and "either a LOG file" in " ".join(both.output.split())
