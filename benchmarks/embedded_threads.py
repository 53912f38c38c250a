"""Embedded model throughput by llama.cpp thread count, idle and with a busy neighbour.

llama.cpp synchronises its worker threads on every token, so a thread that loses its core
stalls the others: with every core in use by llama.cpp and one other busy process, generation
can collapse. This prints output tokens/s for each thread count, once on an otherwise idle
machine (as far as this script can tell) and once with ``--hogs`` CPU-bound processes running,
to choose the default (``models.NAME.threads``; ``deploysim serve-embedded --threads``).
Usage::

    .venv/bin/python benchmarks/embedded_threads.py [--threads 1 2] [--requests 8] [--hogs 1]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import time

from deploysim.models.base import ModelRequest
from deploysim.models.embedded import EmbeddedProvider, EmbeddedServer
from deploysim.models.spec import SamplingParams
from deploysim.records import Message


def hog() -> None:
    x = 0
    while True:
        x = (x * 1103515245 + 12345) % 2**31


async def measure(threads: int, requests: int, max_tokens: int) -> tuple[float, int]:
    with EmbeddedServer(slots=2, context_per_slot=2048, threads=threads) as server:
        provider = EmbeddedProvider(server)
        params = SamplingParams(max_tokens=max_tokens, temperature=0.7, seed=1)
        prompts = [f"Write a short story about a lighthouse keeper, part {i}." for i in range(requests)]
        start = time.perf_counter()
        gens = await asyncio.gather(*(provider.generate(ModelRequest(
            messages=(Message(role="user", content=p),), tools=(), params=params, clearance="public"))
            for p in prompts))
        wall = time.perf_counter() - start
        await provider.aclose()
    tokens = sum(g.usage.output_tokens for g in gens)
    return tokens / wall, tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--hogs", type=int, default=1, help="CPU-bound neighbour processes in the busy run")
    args = ap.parse_args()
    print(f"{os.cpu_count()} cores; {args.requests} requests of up to {args.max_tokens} tokens, 2 slots")
    print(f"{'threads':>7}  {'idle tok/s':>10}  {'busy tok/s':>10}  (busy = {args.hogs} CPU-bound neighbour)")
    for threads in args.threads:
        idle, _ = asyncio.run(measure(threads, args.requests, args.max_tokens))
        hogs = [multiprocessing.Process(target=hog, daemon=True) for _ in range(args.hogs)]
        for h in hogs:
            h.start()
        try:
            busy, _ = asyncio.run(measure(threads, args.requests, args.max_tokens))
        finally:
            for h in hogs:
                h.terminate()
        print(f"{threads:>7}  {idle:>10.1f}  {busy:>10.1f}")


if __name__ == "__main__":
    main()
