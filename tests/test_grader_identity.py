"""A grader's identity covers everything that decides its verdict: rule code and every helper
it uses, classifier weights and code, the judge's template, model, parameters, parser and
renderer. Judges use explicit versions (re-judging costs money), pinned here: changing their
code without bumping the version fails this test."""

from __future__ import annotations

import inspect

import pytest

from deploysim.grade import judge, transcript
from deploysim.grade.identity import code_fingerprint, rule_modules, source_fingerprint
from deploysim.grade.rules import RuleGrader
from deploysim.grade.taxonomy import load_taxonomy

#: (version, fingerprint of the code it names). When a test below fails, the code changed: bump
#: the version in the module and update both numbers here, in the same commit.
PINNED_PARSER = (1, "a81a77cefb5890495f1cb5885dd71b8d")
PINNED_RENDER = (2, "e4690ffb0eb3fdd73bcb263e5d51e32e")


def parser_fingerprint() -> str:
    return source_fingerprint("".join(inspect.getsource(f) for f in (judge.parse_verdict, judge.output_schema,
                                                                      judge._strip_fence)))


def test_the_verdict_parser_changes_only_with_a_version_bump() -> None:
    assert (judge.PARSER_VERSION, parser_fingerprint()) == PINNED_PARSER, (
        "the judge's verdict parser changed: bump PARSER_VERSION in grade/judge.py and update PINNED_PARSER")


def test_the_transcript_renderer_changes_only_with_a_version_bump() -> None:
    assert (transcript.RENDER_VERSION, code_fingerprint(("deploysim.grade.transcript",))) == PINNED_RENDER, (
        "the judge transcript renderer changed: bump RENDER_VERSION in grade/transcript.py and update "
        "PINNED_RENDER")


def test_source_fingerprints_ignore_docstrings_and_comments_but_not_code() -> None:
    base = 'def f(x):\n    """Doc."""\n    return x + 1  # add one\n'
    other_doc = 'def f(x):\n    """Other doc."""\n    return x + 1\n'
    assert source_fingerprint(base) == source_fingerprint(other_doc)
    assert source_fingerprint(base) != source_fingerprint('def f(x):\n    """Doc."""\n    return x + 2\n')
    assert source_fingerprint("WORDS = ('a', 'b')\n") != source_fingerprint("WORDS = ('a', 'b', 'c')\n")


def test_rule_identity_covers_every_rule_module_and_helper() -> None:
    modules = rule_modules()
    assert "deploysim.grade.rules_text" in modules and "deploysim.grade.transcript" in modules
    assert all(m in modules for m in ("deploysim.grade.rules_content", "deploysim.grade.rules_tools",
                                      "deploysim.grade.rules_claims", "deploysim.grade.rules_honesty"))
    grader = RuleGrader(load_taxonomy()["refusal"])
    assert grader.identity["code"] == code_fingerprint(modules)


def test_a_helper_change_makes_a_new_rule_grader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Editing a shared helper (here: simulated by a different fingerprint of the rule modules)
    changes the hash of every rule grader that could depend on it."""
    import deploysim.grade.rules as rules

    before = RuleGrader(load_taxonomy()["refusal"]).grader_hash
    monkeypatch.setattr(rules, "code_fingerprint", lambda modules: "edited-helper")
    assert RuleGrader(load_taxonomy()["refusal"]).grader_hash != before
