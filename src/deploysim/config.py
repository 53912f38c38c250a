"""One TOML file describes a run. Each stage owns its section's model (``<stage>/config.py``);
this module composes them, resolves relative paths against the file's folder, and turns
validation errors into messages that name the file and the dotted key.

Example::

    [run]
    dir = "runs/candidate-2026-11"
    seed = 7

    [[sources]]
    path = "logs/traffic.jsonl.gz"

    [sample]
    n = 20000

    [models.candidate]
    provider = "openai"
    base_url = "http://127.0.0.1:8000/v1"
    model = "my-candidate"
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from deploysim.arms import ArmSpec
from deploysim.deidentify.config import DeidentifyConfig, PrivacyConfig
from deploysim.estimate.config import EstimateConfig
from deploysim.forecast.config import ForecastConfig
from deploysim.grade.config import GradeConfig
from deploysim.models.spec import ModelSpec
from deploysim.sample.config import SampleConfig
from deploysim.simulate.config import SimulateConfig
from deploysim.sources.config import SourceConfig


class ConfigError(ValueError):
    """A run file is unreadable or invalid; the message names the file and the key."""


class RunSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "deploysim-run"
    #: run directory (holds run.sqlite, exports, the report)
    dir: Path = Path("run")
    seed: int = 0


class OutputConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    export: list[Literal["parquet", "jsonl"]] = Field(default_factory=lambda: ["parquet", "jsonl"])
    report: bool = True


class ValidateConfig(BaseModel):
    """``[validate]``: scoring the locked forecast against X's production after release."""

    model_config = ConfigDict(extra="forbid")

    #: X's production logs (any reader format)
    production: list[SourceConfig] = Field(default_factory=list)
    #: the locked forecast file (default: the forecast stage's file)
    forecast: Path | None = None
    #: eligible turns of X's traffic to sample (default: the run's sample size)
    n: int | None = Field(default=None, gt=0)
    #: seed of the release-window sample and of the funnel band
    seed: int = 0


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    run: RunSection = Field(default_factory=RunSection)
    sources: list[SourceConfig] = Field(default_factory=list)
    deidentify: DeidentifyConfig = Field(default_factory=DeidentifyConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    sample: SampleConfig = Field(default_factory=SampleConfig)
    models: dict[str, ModelSpec] = Field(default_factory=dict)
    simulate: SimulateConfig | None = None
    grade: GradeConfig | None = None
    estimate: EstimateConfig = Field(default_factory=EstimateConfig)
    forecast: ForecastConfig = Field(default_factory=ForecastConfig)
    validate_: ValidateConfig = Field(default_factory=ValidateConfig, alias="validate")
    outputs: OutputConfig = Field(default_factory=OutputConfig)
    #: arms beyond (or replacing, by name) the built-in ones: ``[arms.NAME]`` tables
    arms: dict[str, ArmSpec] = Field(default_factory=dict)
    #: the file this configuration was read from (for messages; not part of the config)
    _source: str = PrivateAttr(default="")

    @property
    def source(self) -> str:
        return self._source


def _resolve_paths(cfg: RunConfig, base: Path) -> RunConfig:
    def fix(p: Path | None) -> Path | None:
        return p if p is None or p.is_absolute() else (base / p)

    cfg.run.dir = fix(cfg.run.dir) or cfg.run.dir
    for src in cfg.sources:
        src.path = fix(src.path) or src.path
    if cfg.grade is not None:
        cfg.grade.taxonomy = [fix(p) or p for p in cfg.grade.taxonomy]
    if cfg.simulate is not None:
        cfg.simulate.cache_dir = fix(cfg.simulate.cache_dir)
    cfg.forecast.path = fix(cfg.forecast.path)
    cfg.forecast.challenge_set = fix(cfg.forecast.challenge_set)
    cfg.forecast.past_scorecards = [fix(p) or p for p in cfg.forecast.past_scorecards]
    cfg.deidentify.reidentification_file = fix(cfg.deidentify.reidentification_file)
    for src in cfg.validate_.production:
        src.path = fix(src.path) or src.path
    cfg.validate_.forecast = fix(cfg.validate_.forecast)
    return cfg


def _format_errors(path: Path, err: ValidationError) -> str:
    lines = [f"{path}: invalid run configuration"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"  {key}: {msg}")
    return "\n".join(lines)


def parse_config(data: dict[str, Any], *, path: Path) -> RunConfig:
    try:
        cfg = RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(path, err)) from None
    cfg = _resolve_paths(cfg, path.parent.resolve())
    cfg._source = str(path)
    return cfg


def load_config(path: str | Path) -> RunConfig:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise ConfigError(f"{p}: cannot read run configuration ({err.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"{p}: not UTF-8 ({err})") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{p}: TOML syntax error: {err}") from None
    return parse_config(data, path=p)
