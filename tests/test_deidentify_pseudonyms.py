"""Pseudonym numbering, overlap resolution and propagation (pure functions)."""

from __future__ import annotations

from deploysim.deidentify.evaluate import Scores, Span, score_text
from deploysim.deidentify.pseudonyms import (
    Finding,
    PseudonymTable,
    deidentify_text,
    normalize,
    resolve_overlaps,
)


def spans(text: str, found: list[Finding]) -> list[tuple[str, str]]:
    return [(f.entity_type, text[f.start : f.end]) for f in found]


def test_numbering_by_first_appearance_and_same_value_same_pseudonym() -> None:
    table = PseudonymTable()
    assert table.pseudonym("PERSON", "Lina Artemova") == "<PERSON_1>"
    assert table.pseudonym("EMAIL_ADDRESS", "lina@example.com") == "<EMAIL_ADDRESS_1>"
    assert table.pseudonym("PERSON", "Daniel Thompson") == "<PERSON_2>"
    assert table.pseudonym("PERSON", "lina  ARTEMOVA") == "<PERSON_1>"  # case and spacing do not matter
    assert table.pseudonym("EMAIL_ADDRESS", "LINA@example.com") == "<EMAIL_ADDRESS_1>"


def test_values_compared_on_digits_for_numbers() -> None:
    assert normalize("PHONE_NUMBER", "+1 (415) 555-0134") == normalize("PHONE_NUMBER", "14155550134")
    assert normalize("CREDIT_CARD", "4111-1111-1111-1111") == normalize("CREDIT_CARD", "4111 1111 1111 1111")
    assert normalize("API_KEY", "sk-ABC") != normalize("API_KEY", "sk-abc")  # secrets are case-sensitive


def test_person_links_first_names_to_full_names_but_keeps_two_people_apart() -> None:
    table = PseudonymTable()
    lina = table.pseudonym("PERSON", "Lina Artemova")
    assert table.pseudonym("PERSON", "Lina") == lina
    assert table.pseudonym("PERSON", "Artemova") == lina
    assert table.pseudonym("PERSON", "Lina M. Artemova") == lina  # same first and last word
    assert table.pseudonym("PERSON", "Lina Smith") != lina  # shares only the first name
    other = PseudonymTable()
    lone = other.pseudonym("PERSON", "Tom")
    assert other.pseudonym("PERSON", "Tom Baker") == lone


def test_containment_and_tiers_resolve_overlaps_deterministically() -> None:
    text = "Ship to 1668 Glyn St, Springfield. key: ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5."
    key = text.index("ghp_")
    found = [
        Finding(8, 33, "STREET_ADDRESS", 0.7),
        Finding(13, 20, "PERSON", 0.85),  # name inside an address
        Finding(key, key + 40, "API_KEY", 0.9),
        Finding(key, key + 41, "PERSON", 0.85),
    ]  # NER ate the key
    resolved = resolve_overlaps(text, found)
    assert spans(text, resolved) == [
        ("STREET_ADDRESS", "1668 Glyn St, Springfield"),
        ("API_KEY", "ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"),
    ]
    assert resolve_overlaps(text, list(reversed(found))) == resolved


def test_a_partial_loser_keeps_its_uncovered_part() -> None:
    text = "Mrs. Barbara Yudina Apt. 675 62314 Mellemvej 32"
    found = [Finding(5, 23, "PERSON", 0.85), Finding(20, len(text), "STREET_ADDRESS", 0.7)]
    assert spans(text, resolve_overlaps(text, found)) == [
        ("PERSON", "Barbara Yudina"),
        ("STREET_ADDRESS", "Apt. 675 62314 Mellemvej 32"),
    ]


def test_names_stay_on_one_line_and_out_of_code() -> None:
    text = "Alberico Rizzo\n>Barnett\nRun `fn(...args)` now"
    code = text.index("args")
    found = [Finding(0, 24, "PERSON", 0.85), Finding(code, code + 4, "PERSON", 0.85)]
    assert spans(text, resolve_overlaps(text, found)) == [("PERSON", "Alberico Rizzo")]


def test_existing_pseudonyms_are_never_redetected() -> None:
    text = "Hello <PERSON_1>, call <PHONE_NUMBER_1>"
    assert resolve_overlaps(text, [Finding(6, 16, "PERSON", 0.85), Finding(7, 13, "ORGANIZATION", 0.9)]) == []


def test_propagation_replaces_missed_repeats_in_later_text() -> None:
    table = PseudonymTable()
    first, _ = deidentify_text("I am Lina Artemova.", [Finding(5, 18, "PERSON", 0.85)], table)
    later, replaced = deidentify_text(
        "Lina wrote; Artemova agreed. Linas and alina are other words.", [], table
    )
    assert first == "I am <PERSON_1>."
    assert later == "<PERSON_1> wrote; <PERSON_1> agreed. Linas and alina are other words."
    assert [f.entity_type for f in replaced] == ["PERSON", "PERSON"]
    assert table.replaced["PERSON"] == 3


def test_propagation_never_looks_ahead() -> None:
    """A value first detected in a later text does not change earlier texts: that is what makes
    two prefixes of one conversation number their entities the same way."""
    table = PseudonymTable()
    early, _ = deidentify_text("ask Quionia", [], table)
    deidentify_text("Quionia is here", [Finding(0, 7, "PERSON", 0.85)], table)
    assert early == "ask Quionia"


def test_matching_rule_counts_partial_and_compatible_overlaps() -> None:
    text = "Anna lives at 971 Kesk 53\n Pärnu\n Estonia"
    gold = [Span(0, 4, "PERSON"), Span(14, 25, "STREET_ADDRESS"), Span(27, 32, "GPE"), Span(34, 41, "GPE")]
    predicted = [Span(14, 41, "STREET_ADDRESS"), Span(5, 10, "PERSON")]
    scores = Scores()
    score_text(text, gold, predicted, scores)
    assert scores.recall("STREET_ADDRESS") == 1.0 and scores.recall("GPE") == 1.0  # the block covers the city
    assert scores.recall("PERSON") == 0.0  # "lives" does not cover "Anna"
    assert scores.precision("STREET_ADDRESS") == 1.0 and scores.precision("PERSON") == 0.0
