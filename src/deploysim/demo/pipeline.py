"""``deploysim demo``: the whole method, offline, on our own synthetic traffic.

1. write a baseline production log of model Y and, for later, a release window of model X;
2. write a run file (``deploysim.toml``) using the embedded SmolLM2 server for candidate X
   and, with another system prompt and temperature, as the stand-in incumbent for Y→Y;
3. ``deploysim run`` it: sample + de-identify, simulate, grade with the embedded graders,
   estimate, lock the forecast, report;
4. ``deploysim validate`` it: "release" X on a fresh traffic window (new users, new seed), answered
   by the candidate itself — the run file declares the X-production arm as a *simulated* arm
   (arms are data), so the embedded model stands in for X's production — then the locked
   forecast is scored with the same frozen graders and the report is rebuilt with the scorecard.
   (The synthetic release window also carries scripted "X" responses with shifted rates;
   ``deploysim validate --production logs/release.jsonl.gz`` scores against those instead.)

The run file stays in the output folder so the user can edit it and run the real thing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deploysim.assemble import RUN_STAGES, VALIDATE_STAGES, Options, run_stages
from deploysim.config import RunConfig, load_config
from deploysim.demo.corpus import generate_corpus
from deploysim.estimate.stage import EstimateReport
from deploysim.validate.scorecard import Scorecard

CANDIDATE_PROMPTS = {
    "default": "You are a helpful, honest assistant. Answer the user's last message.",
    "coding_assistant": "You are a coding assistant. Help with code; you may call the provided tools.",
    "customer_support": "You are a customer-support agent for an online shop. Be accurate about orders; "
                        "you may call the provided tools.",
}
INCUMBENT_PROMPTS = {
    "default": "You are an assistant. Reply to the user.",
}


@dataclass(frozen=True)
class DemoSettings:
    out: Path
    conversations: int = 3000
    prefixes: int = 80
    max_tokens: int = 64
    seed: int = 7


@dataclass(frozen=True)
class DemoResult:
    run_dir: Path
    report: Path
    forecast: Path
    scorecard_path: Path
    scorecard: Scorecard
    estimates: EstimateReport | None


def _toml_table(prompts: dict[str, str]) -> str:
    return "\n".join(f'{k} = "{v}"' for k, v in prompts.items())


def write_run_file(s: DemoSettings, baseline: Path, release: Path) -> Path:
    text = f"""# Written by `deploysim demo`. Edit it and `deploysim run` it; see docs/config.md.
[run]
name = "demo"
dir = "run"
seed = {s.seed}

[[sources]]
path = "{baseline.relative_to(s.out).as_posix()}"

[deidentify]
enabled = true

[sample]
n = {s.prefixes}
seed = {s.seed}

[models.candidate]
provider = "embedded"
model = "smollm2-135m-instruct"
params = {{ temperature = 0.8, top_p = 0.95, max_tokens = {s.max_tokens}, seed = {s.seed} }}
slots = 4

[models.candidate.system_prompts]
{_toml_table(CANDIDATE_PROMPTS)}

[models.incumbent]
provider = "embedded"
model = "smollm2-135m-instruct"
params = {{ temperature = 0.3, max_tokens = {s.max_tokens}, seed = {s.seed + 1} }}
slots = 4

[models.incumbent.system_prompts]
{_toml_table(INCUMBENT_PROMPTS)}

[simulate]
candidate = "candidate"
control = "incumbent"

[grade]

[estimate]
alpha = 0.1

[forecast]
interval = 0.9
# The Y->Y arm here is SmolLM2 standing in for the incumbent, not the model that wrote the
# log, so forecast directions are taken against Y's real production responses instead.
direction_reference = "y_prod"

[validate]
production = [{{ path = "{release.relative_to(s.out).as_posix()}", name = "release" }}]
n = {s.prefixes}
seed = {s.seed + 1000}

# X's production after release: in the demo the candidate itself answers a fresh traffic window
# (a simulated arm in the release pool), standing in for the logs a real release would have.
[arms.x_prod]
role = "candidate_production"
kind = "simulated"
model = "candidate"
pool = "release"

[outputs]
export = ["parquet", "jsonl"]
report = true
"""
    path = s.out / "deploysim.toml"
    path.write_text(text, encoding="utf-8")
    return path


def run_demo(s: DemoSettings, *, progress: bool = True,
             log: Callable[[str], None] = print) -> DemoResult:
    s.out.mkdir(parents=True, exist_ok=True)
    logs = s.out / "logs"
    logs.mkdir(exist_ok=True)
    baseline, release = logs / "baseline.jsonl.gz", logs / "release.jsonl.gz"
    if not baseline.exists():
        stats = generate_corpus(baseline, n=s.conversations, seed=s.seed, window="baseline")
        log(f"[demo] wrote {baseline} ({stats.summary()['conversations']} conversations of model Y)")
    if not release.exists():
        stats = generate_corpus(release, n=s.conversations, seed=s.seed + 1000, window="release")
        log(f"[demo] wrote {release} ({stats.summary()['conversations']} conversations of model X, "
            "after release)")
    cfg: RunConfig = load_config(write_run_file(s, baseline, release))
    options = Options(progress=progress)
    results = run_stages(cfg, RUN_STAGES, options=options, log=log)
    estimates = next((r.data["report"] for r in results if r.stage == "estimate" and "report" in r.data),
                     None)
    validated = run_stages(cfg, VALIDATE_STAGES, options=options, log=log)
    outcome = next(r.data["outcome"] for r in validated if r.stage == "validate")
    report = next(r for r in validated if r.stage == "report")
    return DemoResult(run_dir=cfg.run.dir, report=Path(report.data["html"]), forecast=outcome.path.parent /
                      "forecast.json" if cfg.forecast.path is None else cfg.forecast.path,
                      scorecard_path=outcome.path, scorecard=outcome.scorecard, estimates=estimates)
