"""Plugin seams: a provider, a grader kind and a log format installed from a temporary package
(a real distribution with entry points on sys.path, as ``pip install`` would leave it) are
discovered into the registry and used by stages; broken plugins are named, not tracebacks."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import orjson
import pytest

from deploysim.assemble import RUN_STAGES, run_stages
from deploysim.config import RunConfig
from deploysim.registry import PluginError, Registry
from deploysim.store import RunStore

PLUGIN = '''
"""A tiny third-party deploysim plugin package."""
from deploysim.grade.base import make_judgment
from deploysim.models.base import Generation
from deploysim.records import Message

CALLS = []


class EchoProvider:
    async def generate(self, request):
        CALLS.append(request)
        return Generation(message=Message(role="assistant", content="echo: " + request.messages[-1].content))

    async def aclose(self):
        pass


class EchoPlugin:
    name = "echo"

    def build(self, spec, resources):
        return EchoProvider()

    def is_local(self, spec):
        return True

    def endpoint(self, spec):
        return "in-process echo"


class ShoutGrader:
    def __init__(self, category):
        self.category = category.id
        self.grader_id = "shout:" + category.id
        self.identity = {"kind": "shout", "category": category.id, "version": 1}
        self.grader_hash = "shout-" + category.id

    async def grade(self, item):
        text = item.completion.message.content if item.completion.message else ""
        shouting = text.isupper()
        return make_judgment(self, item, label=shouting, rationale="all capitals" if shouting else "")


class ShoutKind:
    name = "shout"
    needs_judge = False

    def build(self, categories, context):
        return {c.id: ShoutGrader(c) for c in categories}


NAME = "linesfmt"
DETECT_PRIORITY = 5


def detect(row):
    return "line_a" in row


def convert(row, *, source, index):
    return [{"id": f"{source}:{index}", "messages": [
        {"role": "user", "content": row["line_a"]}, {"role": "assistant", "content": row["line_b"]}]}]


PROVIDER = EchoPlugin()
KIND = ShoutKind()
'''


@pytest.fixture
def plugin_package(tmp_path: Path) -> Iterator[Path]:
    """``tinyplugin`` with a dist-info declaring entry points in all three groups, on sys.path."""
    site = tmp_path / "site"
    (site / "tinyplugin").mkdir(parents=True)
    (site / "tinyplugin" / "__init__.py").write_text(PLUGIN)
    info = site / "tinyplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinyplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[deploysim.providers]\necho = tinyplugin:PROVIDER\n\n"
        "[deploysim.grader_kinds]\nshout = tinyplugin:KIND\n\n"
        "[deploysim.log_formats]\nlinesfmt = tinyplugin\n")
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    try:
        yield site
    finally:
        sys.path.remove(str(site))
        sys.modules.pop("tinyplugin", None)
        importlib.invalidate_caches()


def test_installed_plugins_are_discovered_beside_the_builtins(plugin_package: Path) -> None:
    registry = Registry.discover()
    assert {"echo", "openai", "anthropic", "embedded"} <= set(registry.providers)
    assert {"shout", "judge", "classifier", "rules"} <= set(registry.grader_kinds)
    assert registry.format_names()[0] == "linesfmt" and registry.format_names()[-1] == "openai"


def test_a_run_uses_the_plugin_provider_grader_and_format(plugin_package: Path, tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"".join(orjson.dumps({"line_a": f"question {i}", "line_b": f"answer {i}"}) + b"\n"
                             for i in range(5)))
    category = tmp_path / "shouting.toml"
    category.write_text('''id = "shouting"
name = "Shouting"
group = "misalignment"
definition = "The answer is written in capitals."
counts = ["ALL CAPS"]
does_not_count = ["normal case"]

[grader]
default = "shout"
offline = "shout"

[judge]
template = "Grade {{ transcript }}"

[judge.output]
label = "shouting?"
rationale = "why"
severity = "0-4"
''')
    cfg = RunConfig.model_validate({
        "run": {"dir": str(tmp_path / "run")}, "sources": [{"path": str(log)}], "sample": {"n": 5},
        "deidentify": {"enabled": False}, "models": {"cand": {"provider": "echo", "model": "echo-1"}},
        "simulate": {"candidate": "cand"},
        "grade": {"taxonomy": [str(category)], "categories": ["shouting"]}, "forecast": {"enabled": False},
        "outputs": {"report": False, "export": []}})
    reports = run_stages(cfg, RUN_STAGES, log=lambda _: None)
    assert {r.stage: r.status for r in reports}["simulate"] == "ran"
    import tinyplugin  # type: ignore[import-not-found]

    assert len(tinyplugin.CALLS) == 5  # the plugin provider answered every prefix
    with RunStore.open(tmp_path / "run", create=False) as store:
        assert {s["format"] for s in store.sources()} == {"linesfmt"}  # the plugin format read the log
        xs = list(store.iter_completions(arm="x_on_y"))
        assert len(xs) == 5 and all(c.message and c.message.content.startswith("echo: question") for c in xs)
        judgments = list(store.iter_judgments(category="shouting"))
        assert len(judgments) == 10 and {j.grader_id for j in judgments} == {"shout:shouting"}
        assert store.graders()["shout-shouting"]["kind"] == "shout"


def test_broken_plugins_are_named() -> None:
    missing = EntryPoint(name="ghost", value="no_such_module_xyz:THING", group="deploysim.providers")
    with pytest.raises(PluginError,
                       match=r"plugin 'ghost' \(deploysim.providers = no_such_module_xyz:THING\) failed"):
        Registry.discover([missing])
    shapeless = EntryPoint(name="half", value="json:dumps", group="deploysim.providers")
    with pytest.raises(PluginError, match="lacks name, build, is_local, endpoint"):
        Registry.discover([shapeless])
    with pytest.raises(PluginError, match="no providers are registered"):
        Registry.discover([])


def test_unknown_plugin_names_are_config_errors(tmp_path: Path) -> None:
    from deploysim.check import problems

    cfg = RunConfig.model_validate({"models": {"m": {"provider": "echo"}}, "simulate": {"candidate": "m"}})
    found = problems(cfg, Registry.discover(), stages=RUN_STAGES)
    assert any("models.m.provider = 'echo': unknown provider" in p for p in found)
