"""Names found from the parse and a name lexicon, where the small NER model is silent.

``en_core_web_sm`` misses many names: lone first names ("Luiza is from Xignite"), foreign
names it calls ``ORG`` or ``GPE``, names typed in lower case. Its tagger still marks most of
them as proper nouns. A run of proper nouns is taken as a person when one of its words is a
known given name or surname (US Census 1990 lists, shipped by the ``names`` package), or when
it has a middle initial (``Ravil G Yefimov``). Words that are ordinary English (WordNet's
index, shipped with the model's lemmatizer) are not taken as names on their own, so ``Will``,
``Grant`` or ``Rose`` at the start of a sentence stay text.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass

from presidio_analyzer import RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts
from spacy.language import Language
from spacy.tokens import Doc, Token

from deploysim.deidentify.names import NOT_NAMES
from deploysim.deidentify.rules import RuleRecognizer, words

#: words that make a run of capitalised words an organisation or a place, not a person
NOT_PERSON_WORDS = frozenset(
    words(
        "Inc Ltd LLC LLP Corp Co Company Group Bank University College Institute Technologies Technology "
        "Systems Services Solutions Partners Holdings Foundation Association Agency Orchestra Band Club "
        "Press News Labs Lab Studio Studios Media Capital Investments Airlines Motors Energy Insurance "
        "Software Consulting Industries International Records Health Hospital School Church Council "
        "Committee Ministry Department Museum Library Hotel Restaurant Cafe Store Shop Market Street Road "
        "Avenue Lane Drive City County State Republic Kingdom North South East West New Saint St Mount "
        "Lake River Island Apt Box Suite Unit Via Rue Avda Calle Monday Tuesday Wednesday Thursday Friday "
        "Saturday Sunday January February March April May June July August September October November "
        "December Day Prince Princess King Queen Duke Duchess Royal Lord Lady Emperor Pope"
    )
)
_NAME_POS = frozenset({"PROPN", "NOUN", "ADJ", "VERB", "X"})
#: spaCy entity labels under which a word is not taken as a name here
_NOT_PERSON_LABELS = frozenset(
    words("GPE LOC NORP DATE TIME LAW LANGUAGE MONEY QUANTITY CARDINAL ORDINAL PERCENT")
)


@dataclass(frozen=True)
class NameLexicon:
    given: frozenset[str]
    surnames: frozenset[str]
    common: frozenset[str]  # ordinary English words (lower case)


def load_lexicon(nlp: Language) -> NameLexicon:
    """Census name lists from the ``names`` package; common words from the model's lemmatizer."""
    try:
        data = importlib.resources.files("names")
    except ModuleNotFoundError:
        raise RuntimeError(
            "the name lexicon comes from the PyPI package 'names' (US Census 1990 name "
            "lists); install it: pip install 'names>=0.3,<1'"
        ) from None

    def read(name: str) -> frozenset[str]:
        text = (data / name).read_text(encoding="ascii")
        return frozenset(line.split()[0].lower() for line in text.splitlines() if line.strip())

    common: set[str] = set()
    if "lemmatizer" in nlp.pipe_names:
        index = nlp.get_pipe("lemmatizer").lookups.get_table("lemma_index", {})  # type: ignore[attr-defined]
        for words in index.values():
            common.update(words)
    return NameLexicon(
        given=read("dist.female.first") | read("dist.male.first"),
        surnames=read("dist.all.last"),
        common=frozenset(common),
    )


def _speaker_label(tok: Token) -> bool:
    """``Ubul: What a wife.`` -- a one-word name opening a line of a dialogue transcript."""
    doc = tok.doc
    at_line_start = tok.i == 0 or "\n" in doc[tok.i - 1].text_with_ws
    return at_line_start and tok.i + 1 < len(doc) and doc[tok.i + 1].text == ":" and tok.text[0].isupper()


#: verbs whose subject is a person ("Timotea lives on ...", "Adomo began writing ...")
HUMAN_VERBS = frozenset(
    words(
        "live say tell ask write begin spend marry work want feel think know love hate move grow study "
        "graduate die reply answer explain complain call visit speak talk meet join leave arrive travel own "
        "rent sign agree promise apologize"
    )
)


def _human_subject(tok: Token) -> bool:
    return tok.pos_ == "PROPN" and tok.dep_ in ("nsubj", "nsubjpass") and tok.head.lemma_ in HUMAN_VERBS


def _is_initial(word: str) -> bool:
    return word[0].isupper() and (len(word) == 1 or (len(word) == 2 and word[1] == "."))


class ParsedNameRecognizer(RuleRecognizer):
    """Person names from proper-noun runs and the lexicon (see the module docstring)."""

    def __init__(self, lexicon: NameLexicon) -> None:
        super().__init__("DeploysimParsedNameRecognizer", "PERSON", [])
        self.lexicon = lexicon

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        if (entities and "PERSON" not in entities) or nlp_artifacts is None or nlp_artifacts.tokens is None:
            return []
        doc: Doc = nlp_artifacts.tokens
        lower_case_text = not any(c.isupper() for c in text)
        results: list[RecognizerResult] = []
        run: list[Token] = []
        for tok in [*doc, None]:
            if tok is not None and run and tok.is_space and "\n" not in tok.text:
                continue  # "Lara  Fiorentino": extra spaces inside a name
            if tok is not None and self._name_like(tok, in_run=bool(run), lower_case_text=lower_case_text):
                run.append(tok)
                continue
            score = self._run_score(run)
            if score:
                results.append(
                    self.result(
                        "PERSON", run[0].idx, run[-1].idx + len(run[-1].text), score, "proper-noun run"
                    )
                )
            run = []
        return results + self._conjuncts(doc, results)

    def _conjuncts(self, doc: Doc, found: list[RecognizerResult]) -> list[RecognizerResult]:
        """Words coordinated with a name are names too: ``Šušulić, Bowman and White``,
        ``they had 6: silvana, adam, ... and caleb``."""
        people: set[int] = {t.i for e in doc.ents if e.label_ == "PERSON" for t in e}
        for r in found:
            span = doc.char_span(r.start, r.end, alignment_mode="expand")
            people.update(t.i for t in span or ())
        extra = []
        for i in sorted(people):
            for conj in doc[i].conjuncts:
                word = conj.text
                if (
                    conj.i in people
                    or conj.pos_ not in ("PROPN", "NOUN")
                    or not word[0].isalpha()
                    or word.rstrip(".") in NOT_NAMES
                    or word in NOT_PERSON_WORDS
                    or conj.ent_type_ in _NOT_PERSON_LABELS
                    or word[0].isupper() != doc[i].text[0].isupper()
                ):
                    continue
                people.add(conj.i)
                extra.append(self.result("PERSON", conj.idx, conj.idx + len(word), 0.45, "coordinated name"))
        return extra

    def _common(self, tok: Token) -> bool:
        return tok.lower_ in self.lexicon.common or tok.lemma_.lower() in self.lexicon.common

    def _name_like(self, tok: Token, in_run: bool, lower_case_text: bool) -> bool:
        word = tok.text
        if (
            not word[0].isalpha()
            or word.rstrip(".") in NOT_NAMES
            or tok.pos_ not in _NAME_POS
            or tok.ent_type_ in _NOT_PERSON_LABELS
        ):
            return False
        if word[0].isupper():
            return not word.isupper() or _is_initial(word)
        if not lower_case_text:  # in cased text a lower-case word is not a name
            return False
        # text typed all in lower case: a given name that is not an ordinary word, a surname after it
        lexicon = self.lexicon.surnames if in_run else self.lexicon.given
        return tok.lower_ in lexicon and not self._common(tok)

    def _known(self, tok: Token) -> bool:
        """A lexicon name that is not an ordinary word -- or a given name that is one, tagged as a
        proper noun away from the start of a sentence (WordNet also lists Wilson, Scott, Sofia)."""
        word = tok.lower_.rstrip(".")
        if word not in self.lexicon.given and word not in self.lexicon.surnames:
            return False
        if not self._common(tok):
            return True
        return word in self.lexicon.given and tok.pos_ == "PROPN" and not tok.is_sent_start

    def _run_score(self, run: list[Token]) -> float:
        if not run or len(run) > 4 or any(t.text.rstrip(".") in NOT_PERSON_WORDS for t in run):
            return 0.0
        if len(run) == 1:
            tok = run[0]
            if (_speaker_label(tok) or _human_subject(tok)) and not self._common(tok):
                return 0.5
            if not self._known(tok):
                return 0.0
            return 0.5 if tok.lower_ in self.lexicon.given else 0.4
        if _is_initial(run[0].text) and len(run) == 2:
            return 0.0
        if any(_is_initial(t.text) for t in run[1:-1]) or any(self._known(t) for t in run):
            return 0.5
        # foreign names: no word of the run is an ordinary English word
        return 0.4 if not any(self._common(t) for t in run) else 0.0
