"""Names that the small spaCy model misses, found from the words around them.

``en_core_web_sm`` tags most full names, but misses many after an honorific, a form label or a
greeting, in signatures, and foreign names. These cues are reliable in chat traffic ("my name
is ...", "Dear ...", "Name: ...", "Mrs. ...", "Regards,\\n...") and cheap to match. A stop list
keeps "Dear Team" or "Hi All" from becoming people.
"""

from __future__ import annotations

from deploysim.deidentify.rules import Rule, RuleRecognizer, words

#: capitalised words that follow the cues but are not names
NOT_NAMES: frozenset[str] = frozenset(
    words(
        "Team All Everyone Everybody Sir Madam Madame There Guys Folks Friend Friends Customer Support "
        "Again So For In The You I We They Me It This That Thanks Thank Hi Hello Hey Dear Regards Sincerely "
        "Best Kind Warm Yours Cheers Please Sorry Happy Sure Yes No Ok Okay Good Great Morning Afternoon "
        "Evening Night Admin Administrator User Assistant Bot Manager Hiring Committee Colleagues Sales "
        "Service Staff Board Department Office Here Just Not Also Now Well Glad Fine Back Looking Writing "
        "Trying Going Using Working Interested Unable New Available Ready Still Today Tomorrow Mom Dad Mum "
        "Doctor Professor"
    )
)

_NAME = r"(?:\p{Lu}\p{Ll}[\p{Ll}\p{M}'’\-]*|\p{Lu}['’]\p{Lu}\p{Ll}+|\p{Lu}\.)"
_NAMES = rf"{_NAME}(?:[ \t]+{_NAME}){{0,3}}"
_HONORIFIC = r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Lady|Lord|Mme|Mlle|Herr|Frau|Sr|Sra|Srta|Sig|Sig\.ra)"
_LABEL = (
    r"(?i:name|full\s+name|first\s+name|last\s+name|surname|customer|client|patient|contact|attn|"
    r"attention|recipient|sender|signed|from|to|cc|guest|passenger|employee|applicant|tenant)"
)
_GREETING = (
    r"(?:Dear|Hi|Hello|Hey|Greetings|Thanks|Thank\s+you|Cheers|Regards|Sincerely|Best|"
    r"Best\s+regards|Kind\s+regards|Warm\s+regards|Yours|Yours\s+truly|Love|XOXO)"
)


#: "my landlord Arjun Park", "mon propriétaire, Benoît Muller", "meinen Vermieter François Rousseau"
_RELATION = (
    r"(?i:\b(?:my|our|mon|ma|mes|mein(?:e[mnrs]?)?|unser(?:e[mnrs]?)?|mi|mis|nuestr[oa]s?)\s+"
    r"(?:landlord|landlady|boss|manager|wife|husband|partner|son|daughter|kid|child|brother|sister|mother|"
    r"father|mom|mum|dad|friend|colleague|co-?worker|neighbou?r|doctor|lawyer|tenant|client|customer|teacher|"
    r"roommate|girlfriend|boyfriend|fianc[ée]e?|cousin|uncle|aunt|propriétaire|vermieter(?:in)?|casero|casera|"
    r"arrendador|jefe|jefa|chef(?:in)?|mari|femme|esposo|esposa)\b)[ \t]*,?[ \t]*"
)


def _not_stopword(value: str) -> bool:
    first = value.split()[0].rstrip(".")
    return first not in NOT_NAMES and not (len(value) <= 2 and value.endswith("."))


#: lower-case words that follow "my name is" but are not names
_LOWER_NOT_NAMES = frozenset(words("not the a an and but so just really also still here there what who"))


def _not_lowercase_stopword(value: str) -> bool:
    return value.split()[0] not in _LOWER_NOT_NAMES


def _two_names(value: str) -> bool:
    return _not_stopword(value) and len(value.split()) >= 2


#: keys whose string value is a person's name in JSON, YAML or code (tool outputs, arguments)
_PERSON_KEYS = (
    r"(?:full_?name|first_?name|last_?name|given_?name|family_?name|sur_?name|customer(?:_?name)?|"
    r"contact(?:_?name)?|recipient(?:_?name)?|sender(?:_?name)?|author|owner|passenger|guest|"
    r"patient(?:_?name)?|employee(?:_?name)?|user_?name|display_?name|holder(?:_?name)?|"
    r"cardholder|account_?holder|name)"
)


def _structured_name_ok(value: str) -> bool:
    """A name-shaped value: 1-4 capitalised words (particles allowed), no digits or '@'; a bare
    ``name`` key (products have names too) needs two or more words."""
    words = value.split()
    if not 1 <= len(words) <= 4 or any(c.isdigit() or c == "@" for c in value):
        return False
    if not all(
        w[0].isupper() or w in ("de", "da", "van", "von", "der", "del", "la", "le", "di") for w in words
    ):
        return False
    return _not_stopword(value)


def _two_word_name_ok(value: str) -> bool:
    return _structured_name_ok(value) and len(value.split()) >= 2


def person_cue_recognizer() -> RuleRecognizer:
    rules = [
        Rule(
            "structured field",
            rf"(?i:[\"']?\b(?!name\b){_PERSON_KEYS}[\"']?)\s*[:=]\s*[\"'](?P<v>[^\"'\n]{{2,60}})[\"']",
            0.7,
            group="v",
            validate=_structured_name_ok,
        ),
        Rule(
            "name field",
            r"(?i:[\"']?\bname[\"']?)\s*[:=]\s*[\"'](?P<v>[^\"'\n]{2,60})[\"']",
            0.6,
            group="v",
            validate=_two_word_name_ok,
        ),
        Rule("honorific", rf"\b{_HONORIFIC}\.?[ \t]+(?P<v>{_NAMES})", 0.6, group="v", validate=_not_stopword),
        Rule(
            "form label",
            rf"(?:^|\b){_LABEL}[ \t]*:[ \t]*(?P<v>{_NAMES})(?![\w@])",
            0.6,
            group="v",
            validate=_not_stopword,
        ),
        Rule(
            "greeting or sign-off",
            rf"(?:^|(?<=[\s>]))(?:{_GREETING})[ \t]*,?[ \t]*(?:\r?\n[ \t>]*)?"
            rf"(?P<v>{_NAMES})(?=[ \t]*(?:[,!.:;\n]|$))",
            0.6,
            group="v",
            validate=_not_stopword,
        ),
        Rule("relation", rf"{_RELATION}(?P<v>{_NAMES})", 0.6, group="v", validate=_not_stopword),
        Rule(
            "self introduction",
            rf"(?i:\bmy\s+name\s+is|\bmy\s+name's|\bcall\s+me|\bnamed|\bcalled)[ \t]+"
            rf"(?P<v>{_NAMES})",
            0.6,
            group="v",
            validate=_not_stopword,
        ),
        # people who type in lower case introduce themselves in lower case too
        Rule(
            "self introduction, lower case",
            r"(?i:\bmy\s+name\s+is|\bmy\s+name's)[ \t]+"
            r"(?P<v>\p{Ll}[\p{Ll}\p{M}'\-]+(?:[ \t]+(?!(?:but|and|or|i|im|from|the|a|an|to|is|was)\b)"
            r"\p{Ll}[\p{Ll}\p{M}'\-]+)?)",
            0.5,
            group="v",
            validate=_not_lowercase_stopword,
        ),
        Rule(
            "this is / I am",
            rf"(?i:\bthis\s+is|\bi\s+am|\bi'm)[ \t]+(?P<v>{_NAMES})",
            0.5,
            group="v",
            validate=_two_names,
        ),
    ]
    return RuleRecognizer("DeploysimPersonCueRecognizer", "PERSON", rules)
