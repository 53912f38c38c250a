"""A small regex-rule recognizer base for Presidio, plus the checksums the rules validate with.

Presidio's ``PatternRecognizer`` always reports the whole regex match and compiles with
``IGNORECASE``; our rules need a *group* as the span (``api_key=<value>``), case-sensitive
patterns (capitalised names and streets) and a validator per rule, so they share this base.
Results carry an ``AnalysisExplanation`` and the recognizer id, so Presidio's context enhancer
boosts them like its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import regex
from presidio_analyzer import AnalysisExplanation, EntityRecognizer, LocalRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts


@dataclass(frozen=True)
class Rule:
    """One pattern: ``group`` selects the reported span; ``validate`` may veto a match.

    ``context`` words (whole words, any case) within :data:`CONTEXT_BEFORE` characters before or
    :data:`CONTEXT_AFTER` after the match raise its score to ``context_score``. Presidio's own
    context enhancer skips spaCy stop words, and "call" or "number" are stop words.
    """

    name: str
    pattern: str
    score: float
    group: int | str = 0
    validate: Callable[[str], bool] | None = None
    flags: int = regex.MULTILINE
    context: tuple[str, ...] = ()
    context_score: float = 0.0
    #: the pattern cannot match text without a digit: skip it there (a cheap test, same results)
    needs_digit: bool = False


CONTEXT_BEFORE = 48
CONTEXT_AFTER = 24


class RuleRecognizer(LocalRecognizer):
    """Runs a fixed list of :class:`Rule` s for one entity type."""

    def __init__(self, name: str, entity: str, rules: Sequence[Rule], context: Iterable[str] = ()) -> None:
        self.rules = tuple(rules)
        self._compiled = tuple(regex.compile(r.pattern, r.flags) for r in self.rules)
        self._context = tuple(
            regex.compile(r"(?i)\b(?:" + "|".join(regex.escape(w) for w in r.context) + r")\b")
            if r.context
            else None
            for r in self.rules
        )
        super().__init__(
            supported_entities=[entity], name=name, supported_language="en", context=list(context)
        )

    def load(self) -> None:
        """Patterns are compiled in ``__init__``; nothing to load."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        entity = self.supported_entities[0]
        if entities and entity not in entities:
            return []
        results = []
        has_digit = any(c.isdigit() for c in text)
        for rule, compiled, context in zip(self.rules, self._compiled, self._context, strict=True):
            if rule.needs_digit and not has_digit:
                continue
            for match in compiled.finditer(text):
                start, end = match.span(rule.group)
                if start < 0 or end <= start:
                    continue
                if rule.validate is not None and not rule.validate(text[start:end]):
                    continue
                score = rule.score
                if context is not None and (
                    context.search(text, max(0, start - CONTEXT_BEFORE), start)
                    or context.search(text, end, end + CONTEXT_AFTER)
                ):
                    score = max(score, rule.context_score)
                if score > 0:
                    results.append(self.result(entity, start, end, score, rule.name))
        return EntityRecognizer.remove_duplicates(results)

    def result(self, entity: str, start: int, end: int, score: float, rule_name: str) -> RecognizerResult:
        explanation = AnalysisExplanation(recognizer=self.name, original_score=score, pattern_name=rule_name)
        return RecognizerResult(
            entity_type=entity,
            start=start,
            end=end,
            score=score,
            analysis_explanation=explanation,
            recognition_metadata={
                RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
            },
        )


# -- checksums -----------------------------------------------------------------------------------
def luhn_ok(number: str) -> bool:
    """Luhn (mod 10) checksum over the digits of ``number`` (payment cards)."""
    digits = [int(c) for c in number if c.isdigit()]
    if len(digits) < 2:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


#: IBAN length per country (ISO 13616 registry); a wrong length is not an IBAN
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24,
    "AE": 23,
    "AL": 28,
    "AT": 20,
    "AZ": 28,
    "BA": 20,
    "BE": 16,
    "BG": 22,
    "BH": 22,
    "BI": 27,
    "BR": 29,
    "BY": 28,
    "CH": 21,
    "CR": 22,
    "CY": 28,
    "CZ": 24,
    "DE": 22,
    "DJ": 27,
    "DK": 18,
    "DO": 28,
    "EE": 20,
    "EG": 29,
    "ES": 24,
    "FI": 18,
    "FK": 18,
    "FO": 18,
    "FR": 27,
    "GB": 22,
    "GE": 22,
    "GI": 23,
    "GL": 18,
    "GR": 27,
    "GT": 28,
    "HN": 28,
    "HR": 21,
    "HU": 28,
    "IE": 22,
    "IL": 23,
    "IQ": 23,
    "IS": 26,
    "IT": 27,
    "JO": 30,
    "KW": 30,
    "KZ": 20,
    "LB": 28,
    "LC": 32,
    "LI": 21,
    "LT": 20,
    "LU": 20,
    "LV": 21,
    "LY": 25,
    "MC": 27,
    "MD": 24,
    "ME": 22,
    "MK": 19,
    "MN": 20,
    "MR": 27,
    "MT": 31,
    "MU": 30,
    "NI": 28,
    "NL": 18,
    "NO": 15,
    "OM": 23,
    "PK": 24,
    "PL": 28,
    "PS": 29,
    "PT": 25,
    "QA": 29,
    "RO": 24,
    "RS": 22,
    "RU": 33,
    "SA": 24,
    "SC": 31,
    "SD": 18,
    "SE": 24,
    "SI": 19,
    "SK": 24,
    "SM": 27,
    "SO": 23,
    "ST": 25,
    "SV": 28,
    "TL": 23,
    "TN": 24,
    "TR": 26,
    "UA": 29,
    "VA": 22,
    "VG": 24,
    "XK": 20,
    "YE": 30,
}


def iban_ok(value: str) -> bool:
    """Country length and ISO 7064 mod-97 check of an IBAN written with or without spaces."""
    compact = "".join(c for c in value if c.isalnum()).upper()
    if IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    digits = "".join(str(int(c, 36)) for c in compact[4:] + compact[:4])
    return int(digits) % 97 == 1


def digit_count(value: str) -> int:
    return sum(c.isdigit() for c in value)


def words(text: str) -> tuple[str, ...]:
    """The whitespace-separated words of ``text``: keeps long vocabularies readable."""
    return tuple(text.split())
