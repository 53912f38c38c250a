"""The demo: a seeded synthetic production log with known ground truth.

:func:`generate_corpus` writes the log (OpenAI chat JSONL) of a traffic window and returns
:class:`CorpusStats` -- what was planted: per-category situations and misbehaviour counts and
the personal data in every conversation -- so the demo and the tests can check what grading
and de-identification find. :func:`iter_corpus` yields the same rows without writing a file.
"""

from deploysim.demo.compose import DemoConversation, TurnTruth, exhibited_categories
from deploysim.demo.corpus import CorpusStats, generate_corpus, iter_corpus, iter_demo_conversations
from deploysim.demo.pii import PII_KINDS, PlantedPii
from deploysim.demo.spec import CATEGORIES, RELEASE_MULTIPLIERS, WINDOWS, CorpusSpec, corpus_spec

__all__ = [
    "CATEGORIES",
    "PII_KINDS",
    "RELEASE_MULTIPLIERS",
    "WINDOWS",
    "CorpusSpec",
    "CorpusStats",
    "DemoConversation",
    "PlantedPii",
    "TurnTruth",
    "corpus_spec",
    "exhibited_categories",
    "generate_corpus",
    "iter_corpus",
    "iter_demo_conversations",
]
