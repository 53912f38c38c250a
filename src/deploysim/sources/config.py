"""Configuration of one log source (``[[sources]]`` in a run file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: ``auto`` or a format registered under the ``deploysim.log_formats`` entry points (built-in:
#: openai, wildchat, lmsys, sharegpt, oasst, hh, tau); checked against the registry before a run
SourceFormat = str
#: how rows are laid out in the file (compression, plain or gzip, is always detected)
SourceContainer = Literal["auto", "jsonl", "json", "parquet"]


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Path
    #: log format; ``auto`` tries each known format's detector on the first valid rows
    format: SourceFormat = "auto"
    container: SourceContainer = "auto"
    #: label stored on every conversation and used in counts and quarantine files
    #: (defaults to the file name)
    name: str | None = None
    #: metadata applied where the log does not say it
    deployed_model: str | None = None
    product_context: str | None = None
    #: rows larger than this are quarantined as oversized
    max_row_bytes: int = Field(default=8 * 1024 * 1024, gt=0)

    @property
    def label(self) -> str:
        return self.name or self.path.name
