"""Throughput of the execution engine against the mock server on loopback, and of the
embedded model.

Rows per workload: the ideal wall time (N / concurrency x latency), ``deploysim simulate``
end to end through a run store, a minimal raw aiohttp loop, and a loop over the official
``openai`` SDK; each client runs in its own process (so CPU seconds and peak RSS are its own)
against a mock server in another process. Then W1 with 5% injected 429/500 (every prefix must
end ``ok``, none lost or duplicated), and the embedded SmolLM2 server's tokens/s and
completions/s at 1 and 4 parallel slots.

    .venv/bin/python benchmarks/throughput.py            # everything (a few minutes)
    .venv/bin/python benchmarks/throughput.py --quick    # W1 only, smaller embedded run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

WORKLOADS = {"W1": (2_000, 100), "W2": (10_000, 500)}
LATENCY_S = 0.2
MOCK = "from deploysim.cli.app import main; main()"


def _usage() -> tuple[float, float]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024.0


def _prefixes(n: int) -> list[Any]:
    from deploysim.records import Message, Prefix, PrefixContext

    out = []
    for i in range(n):
        msgs = (Message(role="system", content="You are a helpful assistant."),
                Message(role="user", content=f"Question {i}: how do I keep a sourdough starter alive?"))
        out.append(Prefix(id=Prefix.make_id(f"conv{i}", 1, msgs), conversation_id=f"conv{i}", turn_index=1,
                          messages=msgs, context=PrefixContext(product_context="general_chat")))
    return out


# -- client rows (each runs in a child process) ----------------------------------------------
def row_deploysim(url: str, n: int, c: int) -> dict[str, Any]:
    from deploysim.models.spec import ModelSpec, SamplingParams
    from deploysim.simulate.config import SimulateConfig
    from deploysim.simulate.stage import simulate_arm
    from deploysim.store.db import RunStore

    with tempfile.TemporaryDirectory() as tmp, RunStore.open(tmp) as store:
        store.put_prefixes(_prefixes(n))
        spec = ModelSpec(provider="openai", model="mock", base_url=url, concurrency=c, max_attempts=8,
                         params=SamplingParams(max_tokens=64))
        cpu0, wall0 = _usage()[0], time.monotonic()
        report = simulate_arm(store, spec, "x_on_y", SimulateConfig(concurrency=c), progress=False)
        wall, cpu = time.monotonic() - wall0, _usage()[0] - cpu0
        ok = store.count_completions(status="ok")
        rows = store.count_completions()
        distinct = len({c.prefix_id for c in store.iter_completions()})
    return {"wall": wall, "cpu": cpu, "ok": ok, "rows": rows, "distinct_prefixes": distinct,
            "retries": report.retries, "rate_limited": report.rate_limited, "errors": report.errors}


def row_raw(url: str, n: int, c: int) -> dict[str, Any]:
    import aiohttp
    import orjson

    async def main() -> int:
        sem = asyncio.Semaphore(c)
        ok = 0
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c)) as session:
            async def one(i: int) -> None:
                nonlocal ok
                body = orjson.dumps({"model": "mock", "max_tokens": 64, "messages": [
                    {"role": "system", "content": "You are a helpful assistant."},
                    {"role": "user", "content": f"Question {i}: how do I keep a sourdough starter alive?"}]})
                async with sem, session.post(f"{url}/chat/completions", data=body,
                                             headers={"Content-Type": "application/json"}) as resp:
                    data = orjson.loads(await resp.read())
                    ok += bool(data["choices"])
            await asyncio.gather(*(one(i) for i in range(n)))
        return ok

    cpu0, wall0 = _usage()[0], time.monotonic()
    ok = asyncio.run(main())
    return {"wall": time.monotonic() - wall0, "cpu": _usage()[0] - cpu0, "ok": ok}


def row_sdk(url: str, n: int, c: int) -> dict[str, Any]:
    import httpx
    import openai

    async def main() -> int:
        client = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0, http_client=
                                    openai.DefaultAsyncHttpxClient(limits=httpx.Limits(
                                        max_connections=c, max_keepalive_connections=c)))
        sem = asyncio.Semaphore(c)
        ok = 0

        async def one(i: int) -> None:
            nonlocal ok
            async with sem:
                r = await client.chat.completions.create(model="mock", max_tokens=64, messages=[
                    {"role": "system", "content": "You are a helpful assistant."},
                    {"role": "user", "content": f"Question {i}: how do I keep a sourdough starter alive?"}])
                ok += bool(r.choices)
        await asyncio.gather(*(one(i) for i in range(n)))
        await client.close()
        return ok

    cpu0, wall0 = _usage()[0], time.monotonic()
    ok = asyncio.run(main())
    return {"wall": time.monotonic() - wall0, "cpu": _usage()[0] - cpu0, "ok": ok}


def row_embedded(slots: int, requests: int, max_tokens: int) -> dict[str, Any]:
    from deploysim.models.embedded import EmbeddedProvider, EmbeddedServer
    from deploysim.models.spec import SamplingParams
    from deploysim.records import Message

    prompts = ["Write one sentence about the sea.", "Name three fruits.", "What is 2+2?",
               "Give a tip for sleeping well.", "Describe a cat in a few words.", "Say hello in French."]

    async def main(server: EmbeddedServer) -> tuple[int, float]:
        provider = EmbeddedProvider(server)
        sem = asyncio.Semaphore(slots)
        tokens = 0

        async def one(i: int) -> None:
            nonlocal tokens
            async with sem:
                g = await provider.generate([Message(role="user", content=prompts[i % len(prompts)])], [],
                                            SamplingParams(max_tokens=max_tokens, temperature=0.7, seed=i))
                tokens += g.usage.output_tokens
        start = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(requests)))
        wall = time.monotonic() - start
        await provider.aclose()
        return tokens, wall

    t0 = time.monotonic()
    with EmbeddedServer(slots=slots, context_per_slot=1024) as server:
        startup = time.monotonic() - t0
        tokens, wall = asyncio.run(main(server))
    return {"slots": slots, "requests": requests, "tokens": tokens, "wall": wall, "startup": startup,
            "tokens_per_s": tokens / wall, "completions_per_s": requests / wall, "rss_mb": _usage()[1]}


ROWS = {"deploysim": row_deploysim, "raw": row_raw, "sdk": row_sdk}


# -- orchestration ---------------------------------------------------------------------------
@contextmanager
def mock_server(*args: str):  # type: ignore[no-untyped-def]
    proc = subprocess.Popen([sys.executable, "-c", MOCK, "mock-server", "--latency", str(LATENCY_S), *args],
                            stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip() if proc.stdout else ""
        if not url.startswith("http://127.0.0.1"):
            raise RuntimeError(f"mock server did not start (printed {url!r})")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def child(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True,
                         timeout=900, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="W1 only and a smaller embedded run")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--skip-embedded", action="store_true")
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "embedded":
            result = row_embedded(int(rest[0]), int(rest[1]), int(rest[2]))
        else:
            result = ROWS[kind](rest[0], int(rest[1]), int(rest[2]))
            result["rss_mb"] = _usage()[1]
        print(json.dumps(result))
        return

    workloads = {"W1": WORKLOADS["W1"]} if args.quick else WORKLOADS
    print(f"mock server on loopback, latency {LATENCY_S * 1000:.0f} ms; each client in its own process\n")
    header = (f"{'workload':<9}{'row':<12}{'wall s':>8}{'x ideal':>9}{'CPU s/1k req':>14}"
              f"{'peak RSS MB':>13}  ok")
    print(header)
    print("-" * len(header))
    verdicts = []
    for name, (n, c) in workloads.items():
        ideal = n / c * LATENCY_S
        print(f"{name:<9}{'ideal':<12}{ideal:>8.2f}{1.0:>9.2f}{'':>14}{'':>13}  N={n}, concurrency={c}")
        results = {}
        with mock_server() as url:
            for row in ("deploysim", "raw", "sdk"):
                r = results[row] = child(row, url, str(n), str(c))
                print(f"{'':<9}{row:<12}{r['wall']:>8.2f}{r['wall'] / ideal:>9.2f}"
                      f"{r['cpu'] / n * 1000:>14.3f}{r['rss_mb']:>13.0f}  {r['ok']}/{n}")
        d, raw = results["deploysim"], results["raw"]
        cpu_ratio = d["cpu"] / raw["cpu"]
        verdicts.append(f"{name}: deploysim wall {d['wall'] / ideal:.2f}x ideal (target <= 1.25), CPU "
                        f"{cpu_ratio:.2f}x raw loop (target <= 2), {d['ok']}/{n} ok")
    n, c = WORKLOADS["W1"]
    faults = ("--rate-429", "0.025", "--rate-500", "0.025", "--retry-after", "0.1", "--seed", "7")
    with mock_server(*faults) as url:
        r = child("deploysim", url, str(n), str(c))
    lost, dup = n - r["distinct_prefixes"], r["rows"] - r["distinct_prefixes"]
    print(f"\nW1 with 5% 429/500 (Retry-After 0.1 s): wall {r['wall']:.2f}s, {r['ok']}/{n} ok, "
          f"{r['errors']} errors, {r['retries']} retries ({r['rate_limited']} rate-limited), "
          f"lost {lost}, duplicated {dup}")
    verdicts.append(f"W1 + 5% faults: {'PASS' if r['ok'] == n and lost == 0 and dup == 0 else 'FAIL'}")
    if not args.skip_embedded:
        print("\nembedded SmolLM2-135M-Instruct (xllamacpp, CPU), short prompts")
        k, max_tokens = (8, 48) if args.quick else (16, 64)
        for slots in (1, 4):
            e = child("embedded", str(slots), str(k if slots == 1 else 2 * k), str(max_tokens))
            print(f"  {slots} slot{'s' if slots > 1 else ' '}: {e['tokens_per_s']:7.1f} tokens/s, "
                  f"{e['completions_per_s']:5.2f} completions/s ({e['requests']} requests, "
                  f"{e['tokens']} tokens in {e['wall']:.1f}s; server start {e['startup']:.2f}s)")
    print("\n" + "\n".join(verdicts))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    main()
