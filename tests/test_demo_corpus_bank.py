"""Demo corpus building blocks: phrase-bank validation, personal-data generators, the CLI."""

from __future__ import annotations

import gzip
import json
import random
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploysim.cli.app import app
from deploysim.demo.bank import BANK_DIR, load_phrase_bank
from deploysim.demo.compose import ConversationComposer
from deploysim.demo.pii import (
    PII_KINDS,
    PiiFactory,
    iban_check_digits,
    iban_valid,
    luhn_check_digit,
    luhn_valid,
)
from deploysim.demo.spec import corpus_spec
from deploysim.demo.templates import Template


def _bank_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "banks"
    shutil.copytree(BANK_DIR, folder)
    return folder


def test_shipped_banks_cover_both_windows() -> None:
    bank = load_phrase_bank()
    for window in ("baseline", "release"):
        ConversationComposer(corpus_spec(window), bank)  # raises if a drawable situation has no scenario


def test_missing_scenario_is_named(tmp_path: Path) -> None:
    folder = _bank_copy(tmp_path)
    text = (folder / "de.toml").read_text()
    start = text.index('situation = "hate"')
    end = text.index("[[scenario]]", start)
    (folder / "de.toml").write_text(text[:start] + 'situation = "benign"\ncontexts = ["nowhere"]\n'
                                    'requests = ["x"]\ngood = ["y"]\n\n' + text[end:])
    with pytest.raises(ValueError, match=r"de\.toml.*'hate'.*'general_chat'"):
        ConversationComposer(corpus_spec("baseline"), load_phrase_bank(folder))


def test_unknown_slot_and_bad_toml_are_named(tmp_path: Path) -> None:
    folder = _bank_copy(tmp_path)
    text = (folder / "fr.toml").read_text()
    (folder / "fr.toml").write_text(text.replace("Écris-moi un petit poème sur {topic}.",
                                                 "Écris-moi un poème sur {sujet_inconnu}."))
    with pytest.raises(ValueError, match=r"fr\.toml scenario #\d+.*sujet_inconnu"):
        ConversationComposer(corpus_spec("baseline"), load_phrase_bank(folder))
    (folder / "fr.toml").write_text("[shared\n")
    with pytest.raises(ValueError, match=r"fr\.toml: invalid TOML"):
        load_phrase_bank(folder)


def test_misalignment_scenario_needs_a_bad_answer(tmp_path: Path) -> None:
    folder = _bank_copy(tmp_path)
    text = (folder / "es.toml").read_text()
    start = text.index('situation = "concealed_uncertainty"')
    bad = text.index('bad = ["{unc_bad}"]', start)
    (folder / "es.toml").write_text(text[:bad] + text[bad + len('bad = ["{unc_bad}"]'):])
    with pytest.raises(ValueError, match=r"es\.toml scenario #\d+.*'bad'"):
        load_phrase_bank(folder)


def test_template_leaves_code_braces_alone() -> None:
    tpl = Template('d = {"a": 1}; f"{x!r}" and {topic} {}')
    assert tpl.slots == ("topic",)
    assert tpl.render({"topic": "T"}) == 'd = {"a": 1}; f"{x!r}" and T {}'


def test_checksums() -> None:
    assert luhn_check_digit("7992739871") == "3"
    assert luhn_valid("4539 1488 0343 6467") and not luhn_valid("4539 1488 0343 6468")
    assert iban_check_digits("DE", "370400440532013000") == "89"
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and not iban_valid("GB83 WEST 1234 5698 7654 32")


def test_pii_factory_records_every_value() -> None:
    people = load_phrase_bank().people
    for lang in ("en", "es", "de", "fr"):
        pii = PiiFactory(random.Random(1), lang, names=people.names, streets=people.streets,
                         cities=people.cities, email_domains=people.email_domains)
        values = [pii.make(kind) for kind in PII_KINDS for _ in range(20)]
        assert [p.value for p in pii.planted] == values
        assert all(luhn_valid(p.value) for p in pii.planted if p.kind == "credit_card")
        assert all(iban_valid(p.value) for p in pii.planted if p.kind == "iban")
        assert all("@" in p.value for p in pii.planted if p.kind == "email")
        assert len({p.value for p in pii.planted if p.kind == "address"}) > 15


def test_email_follows_the_name_hint() -> None:
    people = load_phrase_bank().people
    pii = PiiFactory(random.Random(0), "de", names=people.names, streets=people.streets,
                     cities=people.cities, email_domains=people.email_domains)
    emails = [pii.make("email", hint="Jürgen Müller") for _ in range(50)]
    assert sum("jurgen" in e or "muller" in e for e in emails) > 30


def test_cli_writes_the_corpus_and_truth(tmp_path: Path) -> None:
    out, truth = tmp_path / "log.jsonl.gz", tmp_path / "truth.jsonl"
    result = CliRunner().invoke(app, ["demo-corpus", "--out", str(out), "--n", "40", "--seed", "3",
                                      "--window", "release", "--truth", str(truth)])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())  # rich wraps lines at the terminal width
    assert "40 conversations" in output and "demo-x-2026-12" in output
    with gzip.open(out, "rb") as fh:
        rows = [json.loads(line) for line in fh]
    assert len(rows) == 40 and len(truth.read_text().splitlines()) == 40


def test_cli_rejects_bad_window(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo-corpus", "--out", str(tmp_path / "x.jsonl"), "--window", "later"])
    assert result.exit_code == 2 and "window" in result.output
