"""Street addresses, which Presidio does not detect at all.

An address is found from an *anchor* — a street in one of the layouts people write
(``1668 Glyn St``, ``Augsburger Strasse 36``, ``62 Rue Gafsa``, ``4923 Parmova 109``, ``P.O. Box
104``, a military ``PSC 3117, Box 0609``, a street after "address:" or "lives on", the two
streets of "the corner of X and Y") — and then extended: backwards over a unit written first
(``Apt. 675``), forwards over what follows on the same line (unit, city, state, postcode) and
over up to four following lines that look like address lines (``Suite 343``, ``Pärnu``,
``Estonia 02561``; one blank line may sit between them). The whole block is one
``STREET_ADDRESS`` span: replacing only the street would leave city and postcode, which
together with a name re-identify.
"""

from __future__ import annotations

import regex
from presidio_analyzer import RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from deploysim.deidentify.address_words import (
    ENGLISH_TYPES,
    NOT_ADDRESS_LINES,
    PARTICLES,
    STREET_ENDINGS,
    STREET_WORDS,
    TYPE_FIRST_WORDS,
    UNIT_WORDS,
)
from deploysim.deidentify.rules import Rule, RuleRecognizer


def _alternatives(words: tuple[str, ...]) -> str:
    return "|".join(regex.escape(w) for w in sorted(words, key=len, reverse=True))


_CAP = r"(?:(?:[dDlL]['’])?\p{Lu}[\p{L}\p{M}'’\-]*\.?)"
_WORD = rf"(?:{_CAP}|(?:{_alternatives(PARTICLES)}))"
_ANY_WORD = r"(?:[\p{L}\p{M}'’\-]+\.?)"
_NUM = r"(?:\d{1,6}[A-Za-z]?(?:[/\-]\d{1,4}[A-Za-z]?)?\.?)"
_TYPE_WORD = rf"(?i:{_alternatives(STREET_WORDS)})\.?"
_COMPOUND = rf"(?:[\p{{L}}\p{{M}}]{{3,}}(?i:{_alternatives(STREET_ENDINGS)}))"
_TYPE = rf"(?:{_TYPE_WORD}|{_COMPOUND})(?![\p{{L}}\p{{M}}])"
_TYPE_FIRST = rf"(?i:{_alternatives(TYPE_FIRST_WORDS)})\.?(?![\p{{L}}\p{{M}}])"
_UNIT = rf"(?:{UNIT_WORDS}\.?\s*#?\s*\d{{1,6}}[A-Za-z]?)"
_SP = r"[ \t]+"
_START = r"(?<![\w.,])"
_CUE = (
    r"(?i:address(?:es)?|addr\.?|located\s+(?:at|on|in)|lives?\s+(?:at|on|in)|lived\s+(?:at|on|in)|"
    r"living\s+(?:at|on|in)|reside[sd]?\s+(?:at|on|in)|meet\s+(?:me|us|you)\s+at|stop\s+at|"
    r"(?:ship|deliver|send|mail|post)(?:ed|ing)?\s+(?:it\s+|this\s+|them\s+)?to|moved\s+to|"
    r"visit\s+(?:me|us)\s+at|side\s+of|(?:is|are)\s+at|come\s+to|residence)"
)

ANCHORS: tuple[Rule, ...] = (
    # 1668 Glyn St · 018 74 Diakou Street · 62573 103 Cassidy Street (a capitalised name is required)
    Rule(
        "number, name, street type",
        rf"{_START}(?:{_NUM}{_SP}){{1,2}}(?:{_WORD}{_SP}){{0,3}}{_CAP}{_SP}{_TYPE}"
        rf"(?:{_SP}{_NUM}(?![\w]))?",
        0.7,
        needs_digit=True,
    ),
    # 62 Rue Gafsa · Avda. Generalísimo 6 · ul. Długa 5 · Via delle Coste 41
    Rule(
        "street type first, number before",
        rf"{_START}(?:{_NUM}{_SP}){{1,2}}{_TYPE_FIRST}{_SP}(?:{_WORD}[ \t]*){{1,4}}"
        rf"(?:[ \t]*{_NUM}(?![\w]))?",
        0.7,
        needs_digit=True,
    ),
    Rule(
        "street type first, number after",
        rf"{_START}{_TYPE_FIRST}{_SP}(?:{_WORD}{_SP}){{1,4}}{_NUM}(?![\w])",
        0.6,
        needs_digit=True,
    ),
    # Augsburger Strasse 36 · Trenerys gate 232 · Hegedûs Gyula utca 76. · Wingertweg 126 · hersnapvej 18
    Rule(
        "name, street type, number",
        rf"{_START}(?:{_NUM}{_SP}){{0,2}}(?:(?:{_WORD}{_SP}){{0,2}}{_CAP}{_SP}{_TYPE}|{_COMPOUND})"
        rf"{_SP}{_NUM}(?![\w])",
        0.6,
        needs_digit=True,
    ),
    # 74678 midtvollen 130 st. · 518 Árpád fejedelem útja 62. St.: house number, then the type
    Rule(
        "number, name, number, street type",
        rf"{_START}\d{{1,6}}{_SP}(?:{_ANY_WORD}{_SP}){{1,4}}{_NUM}{_SP}(?i:st|street|rd|road|ave|avenue)\.?(?!\w)",
        0.6,
        needs_digit=True,
    ),
    # 4923 Parmova 109 · 5850 Jana Nerudy 894: building number, name, house number (not a year)
    Rule(
        "number, name, number",
        rf"{_START}(?!(?:19|20)\d\d\b)\d{{3,5}}{_SP}{_CAP}{_SP}(?:{_WORD}{_SP}){{0,3}}{_NUM}(?![\w.,]\d)",
        0.5,
        needs_digit=True,
    ),
    # after a cue: "lives on the north side of Joaquin Suarez 2906", "address: Dunajska 56"
    Rule(
        "name and number after a cue",
        rf"{_CUE}[\s:]+(?:(?i:the|a|an|north|south|east|west|side|of|corner)\s+){{0,5}}"
        rf"(?P<v>(?:{_NUM}{_SP})?{_CAP}(?:{_SP}{_WORD}){{0,3}}{_SP}{_NUM})(?![\w])",
        0.6,
        group="v",
        needs_digit=True,
    ),
    # "shows on Marina Fort Street": a named street without a number
    Rule(
        "named street",
        rf"(?<=\b(?i:on|at|along|near|off|down|onto|to|from|in)\s)(?:{_CAP}{_SP}){{1,3}}"
        rf"(?:{_alternatives(ENGLISH_TYPES)})(?![\w])",
        0.5,
    ),
    Rule(
        "post office box",
        r"(?<![\w])(?i:p\.?\s?o\.?\s?box|post\s+office\s+box|postbox)\s*#?\s*\d{1,6}(?![\w])",
        0.7,
        needs_digit=True,
    ),
    # PSC 3117, Box 0609 / APO AA 44332 · USNS Smith / FPO AP 12345
    Rule(
        "military",
        r"(?i:(?:psc|unit|cmr)\s+\d{3,5},?\s+box\s+\d{3,5}|(?:usns|usnv|uss|uscgc)\s+\w+)"
        r"\s*\n?\s*(?i:apo|fpo|dpo)\s+(?i:aa|ae|ap)\s+\d{5}",
        0.8,
        needs_digit=True,
    ),
    Rule("unit and box", r"(?<![\w])Unit\s+\d{3,5}\s+Box\s+\d{3,5}", 0.6, needs_digit=True),
)
#: "the corner of Csabai kapu 39. and Mathias Pass": two streets, any case
CORNER = regex.compile(
    r"(?i:corner\s+of)\s+(?P<a>[^\n,;.!?]{3,60}?\.?)\s+(?i:and|&)\s+"
    r"(?P<b>[^\n,;!?]{3,60}?)(?=\s+(?i:st)\.|\.?\s*$|[.,;!?\n]|\s+(?i:at|in|on|for|after)\b)",
    regex.MULTILINE,
)
#: a unit written before the street ("Apt. 675 62314 Mellemvej 32")
UNIT_BEFORE = regex.compile(rf"{_UNIT}[ \t,]*$")
#: what may follow a street on its own line: units, place names, state codes, postcodes
_TAIL_TOKEN = (
    rf"(?:{_UNIT}|{_CAP}|\(\p{{Lu}}[\p{{L}}\p{{M}}\s]*\)|\d{{3,6}}(?:-\d{{3,4}})?|[A-Z]{{2}}\d?|nan)"
)
SAME_LINE_TAIL = regex.compile(rf"(?:[ \t]*,?[ \t]*{_TAIL_TOKEN}){{1,7}}")
#: a whole line of tail tokens; the last line may end in a postcode followed by punctuation
ADDRESS_LINE = regex.compile(
    rf"[ \t]*[>?*|]*[ \t]*,?[ \t]*{_TAIL_TOKEN}(?:[ \t]*,?[ \t]*{_TAIL_TOKEN}){{0,6}}[ \t]*,?[ \t]*"
    r"(?=\n|$|(?<=\d)[.,;!?](?:\s|$))"
)
MAX_EXTRA_LINES = 4


class StreetAddressRecognizer(RuleRecognizer):
    """Anchors from :data:`ANCHORS` and :data:`CORNER`, extended as the module docstring says."""

    def __init__(self) -> None:
        super().__init__(
            "DeploysimStreetAddressRecognizer",
            "STREET_ADDRESS",
            ANCHORS,
            context=["address", "street", "live", "located", "ship", "deliver"],
        )

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        if entities and "STREET_ADDRESS" not in entities:
            return []
        anchors = super().analyze(text, entities, nlp_artifacts)
        for match in CORNER.finditer(text):
            for group in ("a", "b"):
                start, end = match.span(group)
                anchors.append(self.result("STREET_ADDRESS", start, end, 0.9, "street at a corner"))
        results = []
        for anchor in anchors:
            unit = UNIT_BEFORE.search(text, max(0, anchor.start - 24), anchor.start)
            start = unit.start() if unit else anchor.start
            results.append(
                self.result(
                    "STREET_ADDRESS",
                    start,
                    extend_address(text, anchor.end),
                    anchor.score,
                    anchor.analysis_explanation.pattern_name or "address",
                )
            )
        return merge_overlapping(results, self)


def extend_address(text: str, end: int) -> int:
    """End of the address block whose street ends at ``end``."""
    tail = SAME_LINE_TAIL.match(text, end)
    if tail:
        end = tail.end()
    blank_skipped = False
    for _ in range(MAX_EXTRA_LINES):
        line_end = text.find("\n", end)
        if line_end < 0 or text[end:line_end].strip(" \t,.") != "":
            break
        line = ADDRESS_LINE.match(text, line_end + 1)
        if line is None and not blank_skipped and text.startswith("\n", line_end + 1):
            blank_skipped = True  # one blank line inside a block ("OULU\n\n Finland 80896")
            line = ADDRESS_LINE.match(text, line_end + 2)
        words = line.group().strip(" \t>?*|,").split() if line else []
        if not words or words[0].rstrip(",.") in NOT_ADDRESS_LINES:
            break
        end = line.end() if line else end
    end = len(text[:end].rstrip(" \t,"))
    if text[end - 1 : end] == "." and (end == len(text) or text[end].isspace()):
        end -= 1  # a full stop ends the sentence, not the address
    return end


def merge_overlapping(results: list[RecognizerResult], recognizer: RuleRecognizer) -> list[RecognizerResult]:
    """One span per address block: overlapping or touching anchors become their union."""
    merged: list[RecognizerResult] = []
    for r in sorted(results, key=lambda r: (r.start, -r.end)):
        if merged and r.start <= merged[-1].end:
            last = merged[-1]
            if r.end > last.end or r.score > last.score:
                merged[-1] = recognizer.result(
                    "STREET_ADDRESS",
                    last.start,
                    max(last.end, r.end),
                    max(last.score, r.score),
                    "address block",
                )
        else:
            merged.append(r)
    return merged
