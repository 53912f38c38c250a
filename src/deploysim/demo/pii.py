"""Synthetic personal data planted in the demo corpus, recorded so de-identification can be checked.

Values look real to a detector (Luhn-valid card numbers, IBANs with valid mod-97 check digits,
country-specific phone and address layouts) but are drawn at random from name and street
lists, so they describe nobody. Every value that reaches the log is appended to
``PiiFactory.planted`` with its kind; the list is returned to the caller, never written into
the log itself (the log plays the part of raw production traffic).
"""

from __future__ import annotations

import random
import string
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

PII_KINDS: tuple[str, ...] = ("person", "email", "phone", "address", "credit_card", "iban", "ip_address",
                              "api_key")

_ALNUM = string.ascii_letters + string.digits
_UPPER_ALNUM = string.ascii_uppercase + string.digits
#: IBAN layout per country: (total length, BBAN generator)
_IBAN_BBAN: dict[str, Callable[[random.Random], str]] = {
    "DE": lambda r: _digits(r, 18),
    "FR": lambda r: _digits(r, 10) + "".join(r.choices(_UPPER_ALNUM, k=11)) + _digits(r, 2),
    "ES": lambda r: _digits(r, 20),
    "GB": lambda r: "".join(r.choices(string.ascii_uppercase, k=4)) + _digits(r, 14),
    "NL": lambda r: "".join(r.choices(string.ascii_uppercase, k=4)) + _digits(r, 10),
}
_LANG_COUNTRY = {"en": "US", "es": "ES", "de": "DE", "fr": "FR"}


@dataclass(frozen=True)
class PlantedPii:
    """One personal-data value exactly as it appears in the log text."""

    kind: str
    value: str


def _digits(rng: random.Random, k: int) -> str:
    return "".join(rng.choices(string.digits, k=k))


def luhn_check_digit(payload: str) -> str:
    """The digit that makes ``payload + digit`` pass the Luhn checksum."""
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    digits = [c for c in number if c.isdigit()]
    return len(digits) >= 12 and luhn_check_digit("".join(digits[:-1])) == digits[-1]


def iban_check_digits(country: str, bban: str) -> str:
    """ISO 13616 check digits: 98 - (BBAN + country + "00" as a number) mod 97."""
    rearranged = bban + country + "00"
    number = "".join(str(int(c, 36)) for c in rearranged)
    return f"{98 - int(number) % 97:02d}"


def iban_valid(iban: str) -> bool:
    compact = iban.replace(" ", "")
    number = "".join(str(int(c, 36)) for c in compact[4:] + compact[:4])
    return int(number) % 97 == 1


def ascii_fold(text: str) -> str:
    """"Jürgen Müller" -> "Jurgen Muller" (for e-mail local parts)."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


class PiiFactory:
    """Makes personal-data values for one conversation and records each one it hands out.

    ``names`` maps a language to (first names, last names); ``streets`` and ``cities`` map a
    country to lists; ``email_domains`` is shared.
    """

    def __init__(self, rng: random.Random, language: str, *, names: Mapping[str, tuple[Sequence[str],
                 Sequence[str]]], streets: Mapping[str, Sequence[str]],
                 cities: Mapping[str, Sequence[str]], email_domains: Sequence[str]) -> None:
        self.rng = rng
        self.language = language
        self.country = _LANG_COUNTRY.get(language, "US")
        self._names = names
        self._streets = streets
        self._cities = cities
        self._domains = email_domains
        self.planted: list[PlantedPii] = []

    def make(self, kind: str, hint: str | None = None) -> str:
        """A fresh value of ``kind`` (one of :data:`PII_KINDS`), recorded as planted.

        ``hint`` is a person's name that an e-mail address is usually derived from.
        """
        value = self._email(hint) if kind == "email" else getattr(self, f"_{kind}")()
        self.planted.append(PlantedPii(kind, value))
        return value

    # -- generators (one per kind) ------------------------------------------------------------
    def _person(self) -> str:
        lang = self.language if self.rng.random() < 0.8 else self.rng.choice(tuple(self._names))
        first, last = self._names.get(lang, self._names["en"])
        return f"{self.rng.choice(first)} {self.rng.choice(last)}"

    def _email(self, hint: str | None) -> str:
        r = self.rng
        if hint is not None and r.random() < 0.85:
            first, _, last = ascii_fold(hint).lower().partition(" ")
        else:
            first_names, last_names = self._names["en"]
            first, last = ascii_fold(r.choice(first_names)).lower(), ascii_fold(r.choice(last_names)).lower()
        last = last.replace(" ", "").replace("'", "")
        local = r.choice((f"{first}.{last}", f"{first}{last[:1]}{r.randint(1, 99)}", f"{first[:1]}{last}",
                          f"{first}_{last}{r.randint(70, 99)}"))
        return f"{local}@{r.choice(self._domains)}"

    def _phone(self) -> str:
        r = self.rng
        if self.country == "DE":
            return r.choice((f"+49 15{r.randint(1, 9)} {_digits(r, 8)}", f"030 {_digits(r, 8)}"))
        if self.country == "FR":
            pairs = " ".join(_digits(r, 2) for _ in range(4))
            return r.choice((f"+33 6 {pairs}", f"06 {pairs}"))
        if self.country == "ES":
            return f"+34 6{_digits(r, 2)} {_digits(r, 3)} {_digits(r, 3)}"
        area, exch, line = r.randint(201, 989), r.randint(200, 989), _digits(r, 4)
        return r.choice((f"({area}) {exch}-{line}", f"{area}-{exch}-{line}", f"+1 {area} {exch} {line}"))

    def _address(self) -> str:
        r = self.rng
        street = r.choice(self._streets[self.country])
        city = r.choice(self._cities[self.country])
        num = r.randint(1, 240)
        if self.country == "DE":
            return f"{street} {num}, {r.randint(10115, 99998)} {city}"
        if self.country == "FR":
            return f"{num} {street}, {r.randint(10, 95):02d}{r.randint(0, 999):03d} {city}"
        if self.country == "ES":
            return f"{street} {num}, {r.randint(1, 52):02d}{r.randint(0, 999):03d} {city}"
        city_name, state = city.split("|")
        return f"{r.randint(10, 9899)} {street}, {city_name}, {state} {r.randint(10001, 99950)}"

    def _credit_card(self) -> str:
        r = self.rng
        brand = r.random()  # Visa, Mastercard, American Express
        prefix, length = ("4", 16) if brand < 0.5 else (str(r.randint(51, 55)), 16) if brand < 0.8 \
            else (r.choice(("34", "37")), 15)
        payload = prefix + _digits(r, length - len(prefix) - 1)
        number = payload + luhn_check_digit(payload)
        style = r.random()
        if length == 15:
            return f"{number[:4]} {number[4:10]} {number[10:]}" if style < 0.6 else number
        groups = [number[i:i + 4] for i in range(0, 16, 4)]
        return " ".join(groups) if style < 0.5 else "-".join(groups) if style < 0.7 else number

    def _iban(self) -> str:
        r = self.rng
        local = self.country in _IBAN_BBAN and r.random() < 0.7
        country = self.country if local else r.choice(tuple(_IBAN_BBAN))
        bban = _IBAN_BBAN[country](r)
        iban = country + iban_check_digits(country, bban) + bban
        return " ".join(iban[i:i + 4] for i in range(0, len(iban), 4)) if r.random() < 0.6 else iban

    def _ip_address(self) -> str:
        r = self.rng
        if r.random() < 0.3:
            return r.choice((f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
                             f"192.168.{r.randint(0, 255)}.{r.randint(1, 254)}"))
        first = r.choice((23, 34, 45, 52, 63, 81, 91, 104, 138, 151, 185, 203, 212))
        return f"{first}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"

    def _api_key(self) -> str:
        r = self.rng
        kind = r.randrange(4)
        if kind == 0:
            return "sk-proj-" + "".join(r.choices(_ALNUM, k=40))
        if kind == 1:
            return "AKIA" + "".join(r.choices(_UPPER_ALNUM, k=16))
        if kind == 2:
            return "ghp_" + "".join(r.choices(_ALNUM, k=36))
        return "xoxb-" + _digits(r, 12) + "-" + _digits(r, 13) + "-" + "".join(r.choices(_ALNUM, k=24))
