"""Recognizers for structured identifiers that Presidio lacks or gets wrong.

* payment cards of any issuer (Presidio only knows a few prefixes) with the Luhn checksum;
* IBANs in lower case or grouped with spaces, checked by country length and mod 97;
* phone numbers in international layouts (``+41 (0)69 979 80 58``, ``(64) 3591-3246``,
  ``0688 843 79 56``) that ``phonenumbers`` rejects outside its default regions;
* IPv4/IPv6 addresses validated by :mod:`ipaddress`, skipping version strings;
* passport-like identity numbers, only next to words that name such a document;
* e-mail addresses validated against the public-suffix snapshot shipped with ``tldextract``
  (Presidio's own recognizer fetches the suffix list from the internet on first use).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import regex
import tldextract
from presidio_analyzer import RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts
from presidio_analyzer.predefined_recognizers import EmailRecognizer

from deploysim.deidentify.rules import IBAN_LENGTHS, Rule, RuleRecognizer, digit_count, iban_ok, luhn_ok

# -- payment cards ---------------------------------------------------------------------------------
_CARD_GROUPS = regex.compile(r"\d+")


def _card_ok(value: str) -> bool:
    digits = "".join(c for c in value if c.isdigit())
    if not 12 <= len(digits) <= 19 or digits[0] not in "123456" or len(set(digits)) < 2:
        return False
    groups = _CARD_GROUPS.findall(value)
    if len(groups) > 1 and not all(3 <= len(g) <= 6 for g in groups):
        return False
    return luhn_ok(digits)


CARD_CONTEXT = ("card", "credit", "debit", "visa", "mastercard", "amex", "payment", "cc")


def _any_card_ok(value: str) -> bool:
    """Luhn-valid digits with an issuer prefix outside the usual ranges (accepted only with context)."""
    digits = "".join(c for c in value if c.isdigit())
    return 12 <= len(digits) <= 19 and digits[0] not in "123456" and len(set(digits)) >= 2 and luhn_ok(digits)


def card_recognizer() -> RuleRecognizer:
    digits = r"(?<![\d.,-])\d(?:[ -]?\d){11,18}(?![\d]|[.,-]\d)"
    rules = [
        Rule(
            "card digits",
            digits,
            0.6,
            validate=_card_ok,
            context=CARD_CONTEXT,
            context_score=0.9,
            needs_digit=True,
        ),
        Rule(
            "card digits, other issuer",
            digits,
            0.0,
            validate=_any_card_ok,
            context=CARD_CONTEXT,
            context_score=0.6,
            needs_digit=True,
        ),
    ]
    return RuleRecognizer("DeploysimCardRecognizer", "CREDIT_CARD", rules)


# -- IBAN ------------------------------------------------------------------------------------------
class CheckedIbanRecognizer(RuleRecognizer):
    """Finds candidates loosely, then keeps exactly the country's IBAN length of characters so a
    following word is never swallowed, and checks mod 97."""

    _CANDIDATE = regex.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z0-9]){11,30}")

    def __init__(self) -> None:
        super().__init__("DeploysimIbanRecognizer", "IBAN_CODE", [], context=["iban", "bank", "account"])

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        if (entities and "IBAN_CODE" not in entities) or not any(c.isdigit() for c in text):
            return []
        results = []
        for match in self._CANDIDATE.finditer(text):
            want = IBAN_LENGTHS.get(match.group()[:2].upper())
            if want is None:
                continue
            seen, end = 0, match.start()
            for i in range(match.start(), match.end()):
                if text[i].isalnum():
                    seen += 1
                    if seen == want:
                        end = i + 1
                        break
            if seen != want or (end < len(text) and text[end].isalnum()):
                continue
            if iban_ok(text[match.start() : end]):
                results.append(self.result("IBAN_CODE", match.start(), end, 1.0, "iban mod-97"))
        return results


# -- phone numbers -----------------------------------------------------------------------------------
_DATE = regex.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$")
_SSN_SHAPE = regex.compile(r"^\d{3}-\d{2}-\d{4}$")


def _phone_ok(value: str, low: int = 7) -> bool:
    n = digit_count(value)
    if not low <= n <= 15:
        return False
    core = value.strip()
    if _DATE.match(core) or _SSN_SHAPE.match(core):
        return False
    try:
        ipaddress.IPv4Address(core)
        return False
    except ValueError:
        return True


def _trunk_phone_ok(value: str) -> bool:
    return _phone_ok(value, low=9)


_SEP = r"[ .\-]"
#: an extension after the number: "x4587", " ext. 12"
_EXT = r"(?:[ ]?(?i:x|ext\.?|extension)[ ]?\d{1,6})?"


PHONE_CONTEXT = (
    "phone",
    "telephone",
    "tel",
    "call",
    "called",
    "calling",
    "cell",
    "cellphone",
    "mobile",
    "fax",
    "office",
    "desk",
    "landline",
    "contact",
    "reach",
    "whatsapp",
    "number",
    "sms",
    "text",
    "texts",
    "message",
    "messages",
    "dial",
    "ring",
    "answering",
    "voicemail",
    "registered",
)


def phone_recognizer() -> RuleRecognizer:
    def rule(name: str, pattern: str, score: float, validate: Callable[[str], bool] = _phone_ok) -> Rule:
        return Rule(
            name,
            pattern,
            score,
            validate=validate,
            context=PHONE_CONTEXT,
            context_score=max(score, 0.6),
            needs_digit=True,
        )

    rules = [
        rule(
            "international",
            rf"(?<![\w+])\+\d{{1,3}}(?:{_SEP}?\(0\))?(?:{_SEP}?\(?\d{{1,5}}\)?){{2,6}}{_EXT}(?!\w)",
            0.6,
        ),
        rule(
            "area in parentheses",
            rf"(?<![\w(])\(\d{{1,5}}\){_SEP}?\d{{2,5}}(?:{_SEP}\d{{2,5}}){{0,3}}{_EXT}(?![\w])",
            0.5,
        ),
        rule("north american", rf"(?<![\w.+-])\d{{3}}{_SEP}\d{{3}}{_SEP}\d{{4}}{_EXT}(?![\w]|[.-]\d)", 0.5),
        rule(
            "trunk prefix",
            rf"(?<![\w.+-])0\d{{1,4}}(?:{_SEP}\d{{2,8}}){{1,4}}{_EXT}(?![\w]|[.-]\d)",
            0.45,
            _trunk_phone_ok,
        ),
        # bare digit groups ("9472 7916") or runs ("4155550123") are phones only next to a word
        # such as "call" or "mobile"
        rule("grouped digits", rf"(?<![\w.+-])\d{{2,5}}(?:{_SEP}\d{{2,6}}){{1,4}}(?![\w]|[.-]\d)", 0.2),
        rule("digit run", r"(?<![\w.+-])\d{7,12}(?![\w]|[.-]\d)", 0.0),
    ]
    return RuleRecognizer("DeploysimPhoneRecognizer", "PHONE_NUMBER", rules)


# -- IP addresses ----------------------------------------------------------------------------------
def _ipv4_ok(value: str) -> bool:
    try:
        ipaddress.IPv4Interface(value)
    except ValueError:
        return False
    return True


def _ipv6_ok(value: str) -> bool:
    if value.count(":") < 2 or digit_count(value) < 2:
        return False
    try:
        ipaddress.IPv6Interface(value.split("%")[0])
    except ValueError:
        return False
    return True


def ip_recognizer() -> RuleRecognizer:
    octet = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
    rules = [
        # not after "v", "version " or another dotted number (1.2.3.4.5 is a version, not an IP)
        Rule(
            "ipv4",
            rf"(?<![\w.]|(?i:\bv|version\s))({octet}(?:\.{octet}){{3}}(?:/\d{{1,2}})?)(?![\w]|\.\d)",
            0.6,
            group=1,
            validate=_ipv4_ok,
            needs_digit=True,
        ),
        Rule(
            "ipv6",
            r"(?<![\w:.])([0-9A-Fa-f:]{2,39}(?:%\w+)?(?:/\d{1,3})?)(?![\w:])",
            0.6,
            group=1,
            validate=_ipv6_ok,
            needs_digit=True,
        ),
    ]
    return RuleRecognizer(
        "DeploysimIpRecognizer", "IP_ADDRESS", rules, context=["ip", "ipv4", "ipv6", "address"]
    )


# -- passport-like identity numbers ------------------------------------------------------------------
def _id_ok(value: str) -> bool:
    return digit_count(value) >= 5 and len(value) <= 16


def id_number_recognizer() -> RuleRecognizer:
    """Numbers of identity documents: recognised only after a word naming the document, since
    the shapes (``X1234567``, ``AB123456``) are otherwise indistinguishable from codes."""
    cue = (
        r"(?i:passport|national\s+id(?:entity)?|identity\s+(?:card|document|number)|id\s+card|"
        r"(?:driver'?s?\s+)?licen[cs]e|residence\s+permit|id|document)"
    )
    rules = [
        Rule(
            "document number after cue",
            rf"\b{cue}(?:\s+(?i:no\.?|number|num\.?|nr\.?|#))?\s*(?i:is|was|:|#|=)?\s*"
            r"(?P<v>(?=[A-Za-z0-9-]*\d)[A-Za-z]{0,3}\d[A-Za-z0-9-]{4,14})\b",
            0.6,
            group="v",
            validate=_id_ok,
            needs_digit=True,
        )
    ]
    return RuleRecognizer("DeploysimIdNumberRecognizer", "ID_NUMBER", rules)


# -- e-mail without network --------------------------------------------------------------------------
class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail recognizer with the bundled public-suffix snapshot: no suffix-list fetch
    (``suffix_list_urls=()``) and no cache directory written."""

    def __init__(self) -> None:
        super().__init__(name="DeploysimEmailRecognizer")
        self._extract = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)

    def validate_result(self, pattern_text: str) -> bool:
        return self._extract(pattern_text).fqdn != ""

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        """Not the ``password@host`` of ``scheme://user:password@host`` (that is a URL credential)."""
        results = super().analyze(text, entities, nlp_artifacts, regex_flags)
        return [r for r in results if "://" not in _token_before(text, r.start)]


def _token_before(text: str, start: int, limit: int = 300) -> str:
    """The non-space characters right before ``start`` (``postgres://admin:`` before a password)."""
    i = start
    while i > 0 and not text[i - 1].isspace() and start - i < limit:
        i -= 1
    return text[i:start]
