"""Consistent pseudonyms within one conversation: ``<PERSON_1>`` wherever that person appears.

A :class:`PseudonymTable` lives for one conversation and numbers each entity type by first
appearance in conversation order, so every prefix cut from the same conversation gets the same
numbers (a prefix is the conversation read up to some turn, and nothing later can renumber what
came before). Values are compared after normalisation (``+1 (555) 010-9999`` and
``15550109999`` are one phone); a one-word name that is part of an earlier full name is that
person (``Lina`` after ``Lina Artemova``).

Overlapping findings are resolved deterministically (:func:`resolve_overlaps`), and every value
seen earlier in the conversation is also replaced where a detector missed it later
(:func:`propagate`) — never the other way round, which keeps the numbering prefix-stable.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import regex

#: a pseudonym already in the text (input that was de-identified before): never re-detected
EXISTING_PSEUDONYM = regex.compile(r"<[A-Z][A-Z0-9_]*_\d+>")
_TIERS: dict[str, int] = {
    **dict.fromkeys(
        (
            "PRIVATE_KEY",
            "API_KEY",
            "URL_CREDENTIAL",
            "SECRET",
            "EMAIL_ADDRESS",
            "CREDIT_CARD",
            "IBAN_CODE",
            "US_SSN",
            "IP_ADDRESS",
            "PHONE_NUMBER",
            "ID_NUMBER",
            "CRYPTO",
        ),
        3,
    ),
    "STREET_ADDRESS": 2,
    "PERSON": 1,
}
#: fenced code blocks and inline code
CODE = regex.compile(r"```.*?(?:```|\Z)|`[^`\n]+`", regex.DOTALL)
#: types found by the language model, which means nothing inside code
_NER_TYPES = frozenset({"PERSON", "LOCATION", "ORGANIZATION", "NRP", "DATE_TIME"})
#: entity types compared on their letters and digits only
_COMPACT_TYPES = frozenset(
    {
        "PHONE_NUMBER",
        "CREDIT_CARD",
        "US_SSN",
        "IBAN_CODE",
        "ID_NUMBER",
        "US_PASSPORT",
        "US_DRIVER_LICENSE",
        "US_ITIN",
        "US_BANK_NUMBER",
        "UK_NHS",
        "MEDICAL_LICENSE",
    }
)
#: entity types compared exactly (secrets are case-sensitive)
_EXACT_TYPES = frozenset({"API_KEY", "SECRET", "PRIVATE_KEY", "URL_CREDENTIAL", "CRYPTO"})
_SINGLE_LINE_TYPES = frozenset(
    {
        "PERSON",
        "EMAIL_ADDRESS",
        "PHONE_NUMBER",
        "US_SSN",
        "IP_ADDRESS",
        "LOCATION",
        "ORGANIZATION",
        "NRP",
        "DATE_TIME",
    }
)
#: trimmed from the start of a span (not brackets: "(415) 555-0134" starts with one)
_LEADING = " \t\r\n.,;:!?\"'"
_POSSESSIVE = regex.compile(r"['’]s$")
_TRAILING_UNIT = regex.compile(r"\s+(?:Apt|Apartment|Suite|Ste|Unit|Flat|Room|Box)\.?$")
_EDGE = " \t\r\n.,;:!?\"'()[]{}<>"


@dataclass(frozen=True, slots=True)
class Finding:
    """A detected span ``text[start:end]`` of ``entity_type``."""

    start: int
    end: int
    entity_type: str
    score: float


def normalize(entity_type: str, value: str) -> str:
    """The identity of a value: two surface forms with the same identity get one pseudonym."""
    if entity_type in _COMPACT_TYPES:
        return "".join(c for c in value if c.isalnum()).upper()
    if entity_type in _EXACT_TYPES:
        return value.strip()
    return " ".join(value.casefold().split()).strip(_EDGE)


def resolve_overlaps(text: str, findings: Iterable[Finding]) -> list[Finding]:
    """Non-overlapping findings in text order.

    1. spans touching an existing pseudonym are dropped;
    2. a name-typed finding inside code (fenced or inline) is dropped: NER on code is noise;
    3. a finding inside another one is dropped (the container is the better description:
       a name inside an address block, digits inside an IBAN);
    4. the rest are taken by score, then length, then position, then type name; a finding that
       loses part of its span keeps the parts nobody else covers, so nothing detected stays
       in clear text.
    """
    taken: list[tuple[int, int]] = [m.span() for m in EXISTING_PSEUDONYM.finditer(text)]
    code = [m.span() for m in CODE.finditer(text)] if "`" in text else []
    if code:  # NER on code is noise: a name-typed span inside code is dropped, patterns stay
        findings = [
            f
            for f in findings
            if f.entity_type not in _NER_TYPES or not any(s <= f.start and f.end <= e for s, e in code)
        ]
    items = sorted(
        {_tidy(text, f) for f in findings},
        key=lambda f: (-(f.end - f.start), -_tier(f), -f.score, f.start, f.entity_type),
    )
    kept: list[Finding] = []
    for f in items:
        if not any(k.start <= f.start and f.end <= k.end and _tier(k) >= _tier(f) for k in kept):
            kept.append(f)
    accepted: list[Finding] = []
    for f in sorted(kept, key=lambda f: (-_tier(f), -f.score, -(f.end - f.start), f.start, f.entity_type)):
        for start, end in _free_parts(f.start, f.end, taken):
            start, end = _trim(text, start, end)
            if sum(c.isalnum() for c in text[start:end]) >= 2:
                accepted.append(Finding(start, end, f.entity_type, f.score))
                bisect.insort(taken, (start, end))
    return sorted(accepted, key=lambda f: f.start)


def _tidy(text: str, f: Finding) -> Finding:
    """Names and single-line identifiers never span a line break: NER sometimes runs a name into
    the next line (``Lena Wirth\nAddress``), and the name is the part before the break; nor does
    a name end in a unit word (``Barbara Yudina Apt``). Multi-line types are kept whole."""
    if f.entity_type not in _SINGLE_LINE_TYPES:
        return f
    span = text[f.start : f.end]
    start = f.start + len(span) - len(span.lstrip())
    line = span.lstrip().split("\n", 1)[0]
    if f.entity_type == "PERSON":
        line = _TRAILING_UNIT.sub("", line)
    return Finding(start, start + len(line), f.entity_type, f.score) if line else f


def _tier(f: Finding) -> int:
    """Which finding wins an overlap: checksummed or shaped identifiers, then addresses, then
    names, then the rest (a NER name never cuts a key or a card number)."""
    return _TIERS.get(f.entity_type, 0)


def _free_parts(start: int, end: int, taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
    parts, cursor = [], start
    for s, e in taken:
        if e <= cursor or s >= end:
            continue
        if s > cursor:
            parts.append((cursor, s))
        cursor = max(cursor, e)
    if cursor < end:
        parts.append((cursor, end))
    return parts


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in _LEADING:
        start += 1
    while end > start and text[end - 1] in " \t\r\n,;:":
        end -= 1
    return start, end


class PseudonymTable:
    """Pseudonyms of one conversation. ``surfaces`` (original text per pseudonym) is kept in
    memory only; it leaves the process only through an explicit re-identification file."""

    def __init__(self) -> None:
        self._by_identity: dict[tuple[str, str], str] = {}
        self._name_tokens: dict[str, str] = {}  # word of a full name -> its pseudonym
        self._single_names: dict[str, str] = {}  # a name seen as one word -> its pseudonym
        self._full_names: set[str] = set()  # pseudonyms that stand for a multi-word name
        self._first_last: dict[tuple[str, str], str] = {}  # (first word, last word) -> pseudonym
        self._next: Counter[str] = Counter()
        self.surfaces: dict[str, str] = {}
        self.entity_types: dict[str, str] = {}
        #: every surface form seen, for propagation: surface -> (entity type, pseudonym)
        self.known: dict[str, tuple[str, str]] = {}
        self.replaced: Counter[str] = Counter()

    def pseudonym(self, entity_type: str, value: str) -> str:
        identity = (entity_type, normalize(entity_type, value))
        found = self._by_identity.get(identity)
        if found is None and entity_type == "PERSON":
            found = self._person_link(value)
        if found is None:
            self._next[entity_type] += 1
            found = f"<{entity_type}_{self._next[entity_type]}>"
            self.surfaces[found] = value
            self.entity_types[found] = entity_type
        self._by_identity[identity] = found
        self.known.setdefault(value, (entity_type, found))
        if entity_type == "PERSON":
            tokens = _name_tokens(value)
            if len(tokens) == 1:
                self._single_names.setdefault(tokens[0], found)
            if len(tokens) > 1:
                self._full_names.add(found)
                self._first_last.setdefault((tokens[0], tokens[-1]), found)
                for token in tokens:
                    self._name_tokens.setdefault(token, found)
        return found

    def _person_link(self, value: str) -> str | None:
        """``Lina`` after ``Lina Artemova`` is that person; so is ``Lina Artemova`` after a lone
        ``Lina``, and ``Lina M. Artemova`` after ``Lina Artemova`` (same first and last word).
        Two full names that share only a first name stay two people."""
        tokens = _name_tokens(value)
        if len(tokens) == 1:
            return self._name_tokens.get(tokens[0])
        same_ends = self._first_last.get((tokens[0], tokens[-1]))
        if same_ends is not None:
            return same_ends
        for token in tokens:
            lone = self._single_names.get(token)
            if lone is not None and lone not in self._full_names:
                return lone
        return None

    def propagation_surfaces(self) -> dict[str, tuple[str, str]]:
        """Strings to look for in later text: every surface, plus the words of full names."""
        out = {s: v for s, v in self.known.items() if len(s.strip()) >= 3}
        for surface, (etype, pseudo) in self.known.items():
            if etype == "PERSON":
                for word in surface.split():
                    word = _POSSESSIVE.sub("", word.strip(_EDGE))
                    if len(word) >= 3 and (word[0].isupper() or surface.islower()):
                        out.setdefault(word, (etype, pseudo))
        return out


def _name_tokens(value: str) -> list[str]:
    return [
        w.casefold() for w in (t.strip(_EDGE) for t in value.split()) if len(w) >= 2 and not w.endswith(".")
    ]


def propagate(text: str, findings: list[Finding], table: PseudonymTable) -> list[Finding]:
    """``findings`` plus uncovered whole-word occurrences of values already in ``table``."""
    surfaces = table.propagation_surfaces()
    if not surfaces:
        return findings
    pattern = regex.compile(
        r"(?<![\w])(?:"
        + "|".join(regex.escape(s) for s in sorted(surfaces, key=len, reverse=True))
        + r")(?![\w])"
    )
    taken = sorted((f.start, f.end) for f in findings)
    extra = []
    for match in pattern.finditer(text):
        if _free_parts(match.start(), match.end(), taken) == [match.span()]:
            extra.append(Finding(match.start(), match.end(), surfaces[match.group()][0], 0.5))
    return sorted([*findings, *extra], key=lambda f: f.start) if extra else findings


def deidentify_text(
    text: str, detected: Iterable[Finding], table: PseudonymTable
) -> tuple[str, list[Finding]]:
    """The text with pseudonyms, and the spans that were replaced (in the original text)."""
    found = resolve_overlaps(text, detected)
    for f in found:  # register this text's values first, so propagation sees them too
        table.pseudonym(f.entity_type, text[f.start : f.end])
    found = propagate(text, found, table)
    return pseudonymize(text, found, table), found


def pseudonymize(text: str, findings: list[Finding], table: PseudonymTable) -> str:
    """Replace non-overlapping ``findings`` (text order) with the table's pseudonyms."""
    if not findings:
        return text
    pieces, cursor = [], 0
    for f in findings:
        pieces.append(text[cursor : f.start])
        pieces.append(table.pseudonym(f.entity_type, text[f.start : f.end]))
        table.replaced[f.entity_type] += 1
        cursor = f.end
    pieces.append(text[cursor:])
    return "".join(pieces)
