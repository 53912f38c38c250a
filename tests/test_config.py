"""Run configuration: TOML parsing, path resolution and errors that name the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploysim.assemble import RUN_STAGES, model_spec
from deploysim.check import check_config
from deploysim.config import ConfigError, load_config
from deploysim.hashing import content_hash
from deploysim.models.spec import ModelSpec
from deploysim.registry import Registry


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_full_config_resolves_relative_paths(tmp_path: Path) -> None:
    path = write(tmp_path, """
[run]
dir = "runs/a"
seed = 3

[[sources]]
path = "logs/x.jsonl.gz"
product_context = "general_chat"

[sample]
n = 50
stratify_by = "product_context"

[models.candidate]
provider = "openai"
base_url = "http://127.0.0.1:8000/v1"
model = "cand"
params = { temperature = 0.7, max_tokens = 256 }
prices = { input_per_mtok = 1.0, output_per_mtok = 2.0 }

[simulate]
candidate = "candidate"
""")
    cfg = load_config(path)
    assert cfg.run.dir == tmp_path / "runs" / "a"
    assert cfg.sources[0].path == tmp_path / "logs" / "x.jsonl.gz"
    assert cfg.sample.n == 50 and cfg.sample.stratify_by == "product_context"
    assert cfg.models["candidate"].params.max_tokens == 256
    assert model_spec(cfg, "candidate").prices.cost(1_000_000, 500_000) == pytest.approx(2.0)
    assert model_spec(cfg, "embedded").provider == "embedded"


@pytest.mark.parametrize(("text", "needle"), [
    ("[sample]\nn = 0\n", "sample.n"),
    ("[sample]\nnn = 5\n", "sample.nn: unknown key"),
    ("[[sources]]\nformat = 'openai'\n", "sources.0.path"),
    ("[sample\n", "TOML syntax error"),
])
def test_errors_name_file_and_key(tmp_path: Path, text: str, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert needle in str(err.value)


def test_every_problem_is_reported_before_anything_runs(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Problems that need the registry or the environment are found by the check that runs
    before any stage, all at once, each with its key."""
    monkeypatch.delenv("DEPLOYSIM_TEST_KEY", raising=False)
    path = write(tmp_path, """
[[sources]]
path = "missing.jsonl"
format = "nosuchformat"

[models.x]
provider = "bogus"
base_url = "htp:/127.0.0.1"
api_key_env = "DEPLOYSIM_TEST_KEY"

[simulate]
candidate = "nope"

[grade]
categories = ["hate", "no_such_category"]
graders = { haet = "rules" }
""")
    cfg = load_config(path)
    with pytest.raises(ConfigError) as err:
        check_config(cfg, Registry.discover(), stages=RUN_STAGES)
    text = str(err.value)
    assert str(path) in text and "problems found before anything was run" in text
    for needle in ("arms.x_on_y.model = 'nope'", "models.x.provider = 'bogus'", "models.x.base_url: scheme",
                   "models.x.api_key_env = 'DEPLOYSIM_TEST_KEY'", "sources[0].format = 'nosuchformat'",
                   "sources[0].path", "grade.categories: unknown category 'no_such_category'",
                   "grade.graders.haet: unknown category"):
        assert needle in text, needle


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_spec_hash_ignores_limits_but_not_sampling() -> None:
    a = ModelSpec(model="m", concurrency=4)
    b = ModelSpec(model="m", concurrency=400, rpm=10)
    c = ModelSpec(model="m", params={"temperature": 0.5})  # type: ignore[arg-type]
    assert a.spec_hash() == b.spec_hash()
    assert a.spec_hash() != c.spec_hash()


def test_content_hash_is_order_independent_for_keys() -> None:
    assert content_hash({"a": 1, "b": [1, 2]}) == content_hash({"b": [1, 2], "a": 1})
    assert content_hash({"a": 1}) != content_hash({"a": 2})


def test_every_config_key_is_documented() -> None:
    """docs/config.md names every key of every section model."""
    from pydantic import BaseModel

    from deploysim.config import RunConfig

    doc = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text()
    missing = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            ann = field.annotation
            inner = [a for a in getattr(ann, "__args__", ())
                     if isinstance(a, type) and issubclass(a, BaseModel)]
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                inner.append(ann)
            if inner and prefix == "":
                walk(inner[0], field.alias or name)
            elif f"`{field.alias or name}`" not in doc and f".{field.alias or name}`" not in doc:
                missing.append(f"{prefix}.{field.alias or name}" if prefix else field.alias or name)

    walk(RunConfig, "")
    from deploysim.models.spec import ModelSpec
    walk(ModelSpec, "models.NAME")
    from deploysim.arms import ArmSpec, Environment
    walk(ArmSpec, "arms.NAME")
    walk(Environment, "arms.NAME.environment")
    assert not missing, f"undocumented keys: {missing}"
