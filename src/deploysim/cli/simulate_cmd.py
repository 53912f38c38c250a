"""``deploysim simulate``, ``deploysim serve-embedded`` and ``deploysim mock-server``."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import typer

from deploysim.cli.common import (
    JSON_HELP,
    console,
    finish,
    load_target,
    print_json,
    report_json,
    run_stages,
    user_errors,
)


def simulate(
    target: Path = typer.Argument(..., help="A run config (.toml) or an existing run directory."),
    arm: list[str] = typer.Option(None, "--arm", help="Simulated arm to run (repeatable; default: every "
                                  "simulated arm, e.g. x_on_y and y_on_y)."),
    budget: float = typer.Option(None, "--budget", min=0.0, help="Spend cap in USD for this "
                                                                 "invocation (not simulate.budget_usd)."),
    concurrency: int = typer.Option(None, "--concurrency", min=1, help="Global cap on requests in flight."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the response cache."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
    json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Generate every simulated arm's next turn on its prefixes (X→Y, and Y→Y when configured).
    Resumable: only missing completions are generated. Exit 3 on a budget stop, 4 when
    completions are still pending or failed."""
    from deploysim.assemble import Options
    from deploysim.simulate.config import SimulateConfig

    with user_errors():
        cfg = base = load_target(target)
        sim = (cfg.simulate or SimulateConfig()).model_copy()
        if concurrency:
            sim.concurrency = concurrency
        if no_cache:
            sim.cache = False
        if arm:
            sim.arms = list(arm)
        cfg = cfg.model_copy(update={"simulate": sim})
        reports = run_stages(cfg, ["simulate"], Options(progress=not no_progress and not json_out,
                                                        budget_usd=budget), quiet=json_out, base=base)
    if json_out:
        print_json(report_json(reports))
    else:
        from deploysim.simulate.stage import SimulateReport

        for r in reports:
            for arm_report in r.data.get("arms", []):
                console.print(SimulateReport.model_validate(arm_report).summary(), markup=False,
                              soft_wrap=True)
    finish(reports)


def serve_embedded(
    port: int = typer.Option(8080, "--port", help="Port on 127.0.0.1 (0 = any free port)."),
    slots: int = typer.Option(4, "--slots", min=1, help="Parallel decoding slots."),
    context: int = typer.Option(4096, "--context", min=256, help="Context tokens per slot."),
    threads: int = typer.Option(None, "--threads", min=1,
                                help="llama.cpp threads (default: half the cores)."),
) -> None:
    """Run the embedded SmolLM2-135M-Instruct model as an OpenAI-compatible server on
    127.0.0.1 in the foreground (Ctrl-C stops it)."""
    from deploysim.models.embedded import EmbeddedModelMissing, EmbeddedServer

    try:
        with EmbeddedServer(slots=slots, context_per_slot=context, port=port, threads=threads) as server:
            console.print(f"embedded model serving at {server.base_url}  (Ctrl-C to stop)")
            while True:
                time.sleep(3600)
    except EmbeddedModelMissing as err:
        console.print(f"[bold red]error:[/] {err}")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        console.print("stopped")


def mock_server(
    port: int = typer.Option(0, "--port", help="Port on 127.0.0.1 (0 = any free port)."),
    latency: float = typer.Option(0.0, "--latency", min=0.0, help="Seconds before each answer."),
    jitter: float = typer.Option(0.0, "--jitter", min=0.0, help="Extra random latency, up to this."),
    rate_429: float = typer.Option(0.0, "--rate-429", min=0.0, max=1.0, help="Share answered 429."),
    rate_500: float = typer.Option(0.0, "--rate-500", min=0.0, max=1.0, help="Share answered 500."),
    retry_after: float = typer.Option(1.0, "--retry-after", min=0.0, help="Retry-After of a 429 (s)."),
    fault: list[str] = typer.Option(None, "--fault", help="KIND=SHARE, repeatable; KIND is one of 429, 500, "
                                    "timeout, reset, malformed, truncated, empty, length."),
    seed: int = typer.Option(0, "--seed", help="Seed of the fault draws."),
) -> None:
    """Run the mock OpenAI-compatible server (tests, benchmarks); prints its base URL."""
    from deploysim.models.mock_server import FAULT_KINDS, MockConfig, serve_forever

    shares = {"rate_429": rate_429, "rate_500": rate_500}
    with user_errors():
        for item in fault or []:
            kind, _, share = item.partition("=")
            if kind not in FAULT_KINDS:
                raise ValueError(f"--fault {item!r}: kind must be one of {', '.join(FAULT_KINDS)}")
            try:
                shares[f"rate_{kind}"] = float(share)
            except ValueError:
                raise ValueError(f"--fault {item!r}: SHARE must be a number between 0 and 1") from None
        if sum(shares.values()) > 1:
            raise ValueError("fault shares add up to more than 1")
    cfg = MockConfig(latency_s=latency, jitter_s=jitter, retry_after_s=retry_after, seed=seed, **shares)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(cfg, port, ready=lambda url: print(url, flush=True)))


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
    app.command("serve-embedded")(serve_embedded)
    app.command("mock-server")(mock_server)
