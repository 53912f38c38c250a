"""Sanity checks on PERSON findings, which the small NER model produces generously.

In production traffic the English spaCy model tags imperative verbs ("Format my CV"), order
ids ("W1863871"), code (``Depends(get_db``) and whole phrases of French or Spanish text as
people. A PERSON finding is kept only when it looks like a name:

* no digits or code punctuation;
* in text that uses capitals, one of its words starts with a capital (all-lower-case text is
  left alone);
* a single word that is an ordinary English word (WordNet) and neither a given name nor a
  surname is dropped when only the NER model proposed it;
* in text in another language (more French, Spanish, German, Italian or Portuguese function
  words than English ones), a single capitalised word from the NER model or the parse is
  dropped: the model's guesses there are noise. Cue- and
  field-based names ("Name: ...", ``"customer": "..."``) are kept in any language.
"""

from __future__ import annotations

from collections.abc import Callable

import regex
from presidio_analyzer import RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts
from presidio_analyzer.predefined_recognizers import SpacyRecognizer
from spacy.lang.en.stop_words import STOP_WORDS
from spacy.tokens import Doc

from deploysim.deidentify.parsed_names import NameLexicon
from deploysim.deidentify.rules import words

_NOT_IN_NAMES = regex.compile(r"[\d()\[\]{}<>_=/\\@#$%^*+|;]")
#: recognizers whose PERSON findings come from statistics rather than a cue
GUESSING_RECOGNIZERS = frozenset({"DeploysimSpacyRecognizer", "DeploysimParsedNameRecognizer"})
MIN_WORDS_FOR_LANGUAGE = 6
MIN_FOREIGN_SHARE = 0.15


#: function words of other languages seen in chat logs (French, Spanish, German, Italian, Portuguese)
_FOREIGN = words(
    "le la les des du un une est et pour dans que qui pas sur avec ce cette sont mais ou nous vous "
    "je tu il elle ils être avoir très aussi comme el los las del al es por para una con lo se su "
    "sus pero muy también como yo ella ellos der die das und ist nicht mit ein eine einen zu den dem "
    "von auf für ich sie wir ihr auch wie aber oder sind il lo gli della delle che di è per non sono "
    "ma anche come io noi o os da do dos não são em uma mas você"
)
FOREIGN_FUNCTION_WORDS = frozenset(_FOREIGN) - STOP_WORDS


def looks_foreign(doc: Doc) -> bool:
    """More function words of another language than of English: the English model's guesses at
    names are noise there. Short texts, lists and forms (few function words) count as English."""
    words = [t.lower_ for t in doc if t.is_alpha]
    if len(words) < MIN_WORDS_FOR_LANGUAGE:
        return False
    foreign = sum(w in FOREIGN_FUNCTION_WORDS for w in words)
    return foreign / len(words) >= MIN_FOREIGN_SHARE and foreign > sum(w in STOP_WORDS for w in words)


def keep_person(
    text: str, result: RecognizerResult, doc: Doc, lexicon: NameLexicon, english: Callable[[], bool]
) -> bool:
    """Whether a PERSON ``result`` looks like a name (see the module docstring); ``english`` is
    asked only when needed (it scans the whole text)."""
    span = text[result.start : result.end].strip().split("\n", 1)[0].strip(" \t>")  # names are on one line
    if not span or _NOT_IN_NAMES.search(span):
        return False
    cased_text = any(c.isupper() for c in text)
    if cased_text and not any(w[0].isupper() for w in span.split()):  # "van de Noort" is fine
        return False
    recognizer = (result.recognition_metadata or {}).get(RecognizerResult.RECOGNIZER_NAME_KEY, "")
    if recognizer not in GUESSING_RECOGNIZERS or len(span.split()) > 1:
        return True
    if not english():
        return False
    word = span.strip(".,;:!?'\"").lower()
    token = doc.char_span(result.start, result.end, alignment_mode="expand")
    lemma = token[0].lemma_.lower() if token else word
    common = word in lexicon.common or lemma in lexicon.common
    ner = recognizer == "DeploysimSpacyRecognizer"
    return not ner or not common or word in lexicon.given or word in lexicon.surnames


class CheckedSpacyRecognizer(SpacyRecognizer):
    """Presidio's spaCy recognizer, with its PERSON spans tidied before Presidio merges results:
    cut at the first line break and dropped when they hold digits or code punctuation. Presidio
    removes a result contained in a higher-scoring one of the same type, so an untidied NER span
    running over a JSON record would swallow the cue-based name inside it."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        kept = []
        for result in super().analyze(text, entities, nlp_artifacts):
            if result.entity_type == "PERSON":
                span = text[result.start : result.end]
                first = span.lstrip(" \t\n>").split("\n", 1)[0].rstrip()
                if not first or _NOT_IN_NAMES.search(first):
                    continue
                result.start += span.index(first)
                result.end = result.start + len(first)
            kept.append(result)
        return kept
