"""Recognizers for what Presidio lacks or gets wrong (no spaCy model needed here)."""

from __future__ import annotations

import pytest

from deploysim.deidentify.addresses import StreetAddressRecognizer
from deploysim.deidentify.names import person_cue_recognizer
from deploysim.deidentify.recognizers import (
    CheckedIbanRecognizer,
    OfflineEmailRecognizer,
    card_recognizer,
    id_number_recognizer,
    ip_recognizer,
    phone_recognizer,
)
from deploysim.deidentify.rules import RuleRecognizer, iban_ok, luhn_ok
from deploysim.deidentify.secrets import (
    api_key_recognizer,
    private_key_recognizer,
    secret_recognizer,
    url_credential_recognizer,
)


def found(recognizer: RuleRecognizer | OfflineEmailRecognizer, text: str) -> list[str]:
    entity = recognizer.supported_entities[0]
    return sorted(text[r.start : r.end] for r in recognizer.analyze(text, [entity]) if r.score >= 0.35)


def test_luhn_and_iban_checksums() -> None:
    assert luhn_ok("4111 1111 1111 1111") and not luhn_ok("4111 1111 1111 1112")
    assert iban_ok("DE89 3704 0044 0532 0130 00") and iban_ok("gb82west12345698765432")
    assert not iban_ok("DE89 3704 0044 0532 0130 01")  # check digits
    assert not iban_ok("DE89 3704 0044 0532 0130")  # German IBANs have 22 characters


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("card 4111 1111 1111 1111 please", ["4111 1111 1111 1111"]),
        ("JCB 3519833257665853 and maestro 501864667909", ["3519833257665853", "501864667909"]),
        ("order 4111 1111 1111 1112 is not a card", []),  # fails Luhn
        ("timestamp 1700000000000", []),  # Luhn-invalid digit run
        ("credit card 060426070011 transactions", ["060426070011"]),  # odd issuer, but next to "card"
        ("ref 060426070011 transactions", []),  # the same digits without context
    ],
)
def test_cards(text: str, expected: list[str]) -> None:
    assert found(card_recognizer(), text) == expected


def test_iban_keeps_exact_length_and_ignores_bad_checksums() -> None:
    r = CheckedIbanRecognizer()
    assert found(r, "pay DE89 3704 0044 0532 0130 00 today") == ["DE89 3704 0044 0532 0130 00"]
    assert found(r, "lower gb42nawi04454264788619.") == ["gb42nawi04454264788619"]
    assert found(r, "bad DE89 3704 0044 0532 0130 01") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call +41 (0)69 979 80 58 now", ["+41 (0)69 979 80 58"]),
        ("office (64) 3591-3246", ["(64) 3591-3246"]),
        ("fax 345-899-3560x4587", ["345-899-3560x4587"]),
        ("mobile 0688 843 79 56", ["0688 843 79 56"]),
        ("Can someone call me on 9472 7916?", ["9472 7916"]),  # bare groups need a cue word
        ("we sold 9472 7916 units", []),
        ("released 2023-05-12", []),  # a date
        ("host 192.168.10.20", []),  # an IP address
    ],
)
def test_phones(text: str, expected: list[str]) -> None:
    assert found(phone_recognizer(), text) == expected


def test_ip_addresses_not_versions() -> None:
    r = ip_recognizer()
    assert found(r, "from 203.0.113.7 and 2001:db8::8a2e:370:7334") == [
        "2001:db8::8a2e:370:7334",
        "203.0.113.7",
    ]
    assert found(r, "upgrade to version 1.2.3.4 or v10.0.0.1; see 1.2.3.4.5") == []
    assert found(r, "at 12:30:45 use std::vector") == []


def test_id_numbers_need_a_document_word() -> None:
    r = id_number_recognizer()
    assert found(r, "my passport number is X12345678.") == ["X12345678"]
    assert found(r, "national id: AB1234567") == ["AB1234567"]
    assert found(r, "the part X12345678 is in stock") == []


def test_email_is_offline_and_skips_url_passwords() -> None:
    r = OfflineEmailRecognizer()
    assert found(r, "write to lina.artemova@example.com") == ["lina.artemova@example.com"]
    assert found(r, "postgres://admin:hunter2@db.example.net/prod") == []


@pytest.mark.parametrize(
    "key",
    [
        "sk-proj-Qm3x9TfLw2RbZ8kVn4YpJ7cH",
        "ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5",
        "AKIAIOSFODNN7EXAMPLE",
        "xoxb-1234567890-abcdefghij",
        "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ],
)
def test_api_keys(key: str) -> None:
    assert found(api_key_recognizer(), f"token: {key} (rotated)") == [key]


def test_bearer_token_and_no_false_key() -> None:
    r = api_key_recognizer()
    assert found(r, "Authorization: Bearer abcdefghijklmnop1234") == ["abcdefghijklmnop1234"]
    assert found(r, "the task-manager is sk-ready") == []


def test_private_key_blocks_whole_or_truncated() -> None:
    block = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"
    assert found(private_key_recognizer(), f"key:\n{block}\nthanks") == [block]
    cut = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq3xW9y\nk9Zr5T2yHn8c"
    assert found(private_key_recognizer(), cut + "\n\n(truncated)") == [cut]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password = 'Tr0ub4dor&3x'", ["Tr0ub4dor&3x"]),
        ('{"client_secret": "s3cr3t-v4lue"}', ["s3cr3t-v4lue"]),
        ("export DB_PASSWORD=hunter22!", ["hunter22!"]),
        ("my password is correcthorse7.", ["correcthorse7"]),
        ("password = user_password", []),  # a variable, not a secret
        ("api_key = os.environ['API_KEY']", []),
        ("token: <YOUR_TOKEN>", []),
    ],
)
def test_secrets(text: str, expected: list[str]) -> None:
    assert found(secret_recognizer(), text) == expected


def test_url_credentials_replace_only_the_secret_part() -> None:
    r = url_credential_recognizer()
    assert found(r, "https://bob:s3cret@db.example.com/x") == ["bob:s3cret"]
    assert found(r, "GET https://api.example.com/v1?user=7&access_token=9f8e7d6c5b4a3210fe") == [
        "9f8e7d6c5b4a3210fe"
    ]
    assert found(r, "https://hooks.slack.com/services/T000/B000/XXXXabcd1234") == ["T000/B000/XXXXabcd1234"]
    assert found(r, "https://example.com/docs?page=2") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ship to 1668 Glyn Street, Springfield, IL 62704.", ["1668 Glyn Street, Springfield, IL 62704"]),
        (
            "Our offices are located at 971 Kesk 53\n Suite 343\n Pärnu\n Estonia",
            ["971 Kesk 53\n Suite 343\n Pärnu\n Estonia"],
        ),
        ("I live at Augsburger Strasse 36, Berlin", ["Augsburger Strasse 36, Berlin"]),
        ("Meet me at 62 Rue Gafsa Apt. 981", ["62 Rue Gafsa Apt. 981"]),
        ("PSC 3117, Box 0609\nAPO AA 44332", ["PSC 3117, Box 0609\nAPO AA 44332"]),
        ("The bus station is on P.O. Box 104", ["P.O. Box 104"]),
        ("He lives on the north side of Joaquin Suarez 2906.", ["Joaquin Suarez 2906"]),
        ("the corner of Csabai kapu 39. and Mathias Pass", ["Csabai kapu 39", "Mathias Pass"]),
        ("In 2019 Apple sold 500 phones.", []),
        ("Chapter 3 covers Windows 10 and Python 3.", []),
    ],
)
def test_street_addresses(text: str, expected: list[str]) -> None:
    assert found(StreetAddressRecognizer(), text) == expected


def test_address_block_stops_at_sign_off() -> None:
    text = "Send it to 4923 Parmova 109\nMaribor\nRegards,\nAnna"
    assert found(StreetAddressRecognizer(), text) == ["4923 Parmova 109\nMaribor"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dear Fletcher Hill,\nthanks", ["Fletcher Hill"]),
        ("Name:    Anna Josefsen\nAddress: x", ["Anna Josefsen"]),
        ("my name is vitoria", ["vitoria"]),
        ("Mrs. Schwarz flew home", ["Schwarz"]),
        ('{"customer_name": "Arjun Young", "name": "Aero cordless vacuum"}', ["Arjun Young"]),
        ("Help me write to my landlord Arjun Park about the tap", ["Arjun Park"]),
        ("Aide-moi à écrire à mon propriétaire, Benoît Muller : merci", ["Benoît Muller"]),
        ("my son is sick", []),
        ("Hi, I'm happy to help", []),
        ("Dear Team,", []),
    ],
)
def test_person_cues(text: str, expected: list[str]) -> None:
    assert found(person_cue_recognizer(), text) == expected
