"""Run configuration: TOML parsing, path resolution and errors that name the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploysim.config import ConfigError, load_config
from deploysim.hashing import content_hash
from deploysim.models.spec import ModelSpec


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
    assert cfg.model("candidate").prices.cost(1_000_000, 500_000) == pytest.approx(2.0)
    assert cfg.model("embedded").provider == "embedded"


@pytest.mark.parametrize(("text", "needle"), [
    ("[sample]\nn = 0\n", "sample.n"),
    ("[sample]\nnn = 5\n", "sample.nn: unknown key"),
    ("[[sources]]\nformat = 'openai'\n", "sources.0.path"),
    ("[simulate]\ncandidate = 'nope'\n", "names no [models.nope]"),
    ("[models.x]\nprovider = 'bogus'\n", "models.x.provider"),
    ("[sample\n", "TOML syntax error"),
])
def test_errors_name_file_and_key(tmp_path: Path, text: str, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert needle in str(err.value)


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
                walk(inner[0], name)
            elif f"`{name}`" not in doc and f".{name}`" not in doc:
                missing.append(f"{prefix}.{name}" if prefix else name)

    walk(RunConfig, "")
    from deploysim.models.spec import ModelSpec
    walk(ModelSpec, "models.NAME")
    assert not missing, f"undocumented keys: {missing}"
