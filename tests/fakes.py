"""Fakes shared by the tests: a provider plugin around any provider object, a model hub with an
explicit registry and send policy, and arm builders (arms are data)."""

from __future__ import annotations

from typing import Any

from deploysim.arms import ArmSpec, Environment
from deploysim.models.hub import ModelHub
from deploysim.models.plugins import ProviderResources
from deploysim.models.policy import SendPolicy
from deploysim.models.spec import ModelSpec
from deploysim.registry import Registry
from deploysim.simulate.stage import SimArm


class FakePlugin:
    """A provider plugin that hands out one given provider object for every spec."""

    def __init__(self, provider: Any, *, name: str = "fake", local: bool = True) -> None:
        self.provider = provider
        self.name = name
        self.local = local
        self.built = 0

    def build(self, spec: ModelSpec, resources: ProviderResources) -> Any:
        self.built += 1
        return self.provider

    def is_local(self, spec: ModelSpec) -> bool:
        return self.local

    def endpoint(self, spec: ModelSpec) -> str:
        return "http://127.0.0.1/fake" if self.local else "https://fake.invalid/v1"


def registry_with(*plugins: Any, grader_kinds: tuple[Any, ...] = ()) -> Registry:
    return Registry.discover().replace(providers=plugins, grader_kinds=grader_kinds)


def hub_with(provider: Any, *, local: bool = True, allow_raw: bool = False, name: str = "fake") -> ModelHub:
    """A hub whose provider ``name`` is ``provider`` (local or remote for the send policy)."""
    return ModelHub(registry_with(FakePlugin(provider, name=name, local=local)),
                    SendPolicy(allow_raw_to_remote=allow_raw))


def arm(name: str, model: str = "cand", *, role: str = "variant", pool: str = "production",
        kind: str = "simulated", **env: Any) -> ArmSpec:
    return ArmSpec(name=name, role=role, kind=kind, model=model if kind == "simulated" else None,
                   # type: ignore[arg-type]
                   pool=pool, environment=Environment(**env))


def sim(name: str, spec: ModelSpec, **kwargs: Any) -> SimArm:
    return SimArm(arm=arm(name, **kwargs), spec=spec)


class LoaderKind:
    """A ``classifier`` grader kind built by a test's loader: (category id -> head) -> graders."""

    name = "classifier"
    needs_judge = False

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def build(self, categories: Any, context: Any) -> dict[str, Any]:
        from deploysim.grade.graders import classifier_head

        return dict(self.loader({c.id: classifier_head(c) for c in categories}))


def grade_run(store: Any, cfg: Any, *, judge_provider: Any = None, classifiers: Any = None,
              remote: bool = False,
              budget_usd: float | None = None) -> Any:
    """The grade stage through the assembler on ``store``'s run directory, with fakes plugged into
    the registry: ``judge_provider`` answers for the judge spec's provider, ``classifiers`` builds
    the classifier graders. Returns the stage's GradeReport."""
    from deploysim.assemble import Options, run_stages
    from deploysim.grade.stage import GradeReport

    registry = Registry.discover()
    if judge_provider is not None and cfg.grade is not None and cfg.grade.judge:
        spec = cfg.models[cfg.grade.judge]
        registry = registry.replace(providers=[FakePlugin(judge_provider, name=spec.provider,
                                                          local=not remote)])
    if classifiers is not None:
        registry = registry.replace(grader_kinds=[LoaderKind(classifiers)])
    cfg = cfg.model_copy(update={"run": cfg.run.model_copy(update={"dir": store.run_dir})})
    [report] = run_stages(cfg, ["grade"], options=Options(progress=False, budget_usd=budget_usd),
                          registry=registry,
                          log=lambda _: None)
    return GradeReport.model_validate(report.data)
