"""Memory and storage bound: many prefixes sampled from one very long conversation.

Writes one conversation of ``--turns`` user/assistant turn pairs (each message ~``--chars``
characters) to a JSONL log, then runs the sample stage (through the assembler, de-identification
off) on it in a child process drawing ``--prefixes`` prefixes, and prints the child's peak RSS,
the run database's size, and the prefix-limit counts. The issue's target: 1,000 prefixes from one
10,000-turn conversation under 300 MB peak and a database an order of magnitude smaller than the
588 MB that storing every prefix's whole history again took. The run's limits are raised so that
every turn is eligible (``--max-messages``); with the defaults, turns beyond them are not
eligible and are counted as too long. Usage::

    .venv/bin/python benchmarks/long_conversation.py [--turns 10000] [--prefixes 1000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson


def write_log(path: Path, turns: int, chars: int) -> None:
    filler = ("lorem ipsum dolor sit amet " * (chars // 27 + 1))[:chars]
    messages = [{"role": "system", "content": "You are a helpful assistant."}]
    for i in range(turns):
        messages.append({"role": "user", "content": f"question {i}: {filler}"})
        messages.append({"role": "assistant", "content": f"answer {i}: {filler}"})
    path.write_bytes(orjson.dumps({"id": "the-long-one", "messages": messages}) + b"\n")


def child(root: Path, prefixes: int, max_messages: int) -> None:
    from deploysim.assemble import run_stages
    from deploysim.config import RunConfig

    cfg = RunConfig.model_validate({
        "run": {"dir": str(root / "run")}, "sources": [{"path": str(root / "log.jsonl")}],
        "deidentify": {"enabled": False},
        "sample": {"n": prefixes, "seed": 1, "max_prefix_messages": max_messages}})
    start = time.perf_counter()
    [report] = run_stages(cfg, ["sample"], log=lambda _: None)
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"wall_s": wall, "peak_mb": peak_mb, "children_peak_mb": children_mb,
                      "sampled": report.data.get("sampled"), "too_long": report.data.get("too_long", 0)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--turns", type=int, default=10_000)
    ap.add_argument("--prefixes", type=int, default=1_000)
    ap.add_argument("--chars", type=int, default=20, help="characters of filler per message")
    ap.add_argument("--max-messages", type=int, default=1_000_000,
                    help="sample.max_prefix_messages of the run")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(Path(args.child), args.prefixes, args.max_messages)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_log(root / "log.jsonl", args.turns, args.chars)
        size_log = (root / "log.jsonl").stat().st_size
        out = subprocess.run([sys.executable, __file__, "--child", str(root), "--prefixes",
                              str(args.prefixes),
                              "--max-messages", str(args.max_messages)],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(out.stderr)
            raise SystemExit(out.returncode)
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        db = sum(p.stat().st_size for p in (root / "run").glob("run.sqlite*"))
    print(f"one conversation of {args.turns:,} turns ({2 * args.turns + 1:,} messages, "
          f"log {size_log / 1e6:.1f} MB); "
          f"{figures['sampled']:,} prefixes sampled, {figures['too_long']:,} turns too long for the limits")
    print(f"sample stage: {figures['wall_s']:.1f} s, peak RSS {figures['peak_mb']:.0f} MB "
          f"(workers {figures['children_peak_mb']:.0f} MB), run database {db / 1e6:.1f} MB")
    print(f"targets: peak < 300 MB -> {'met' if figures['peak_mb'] < 300 else 'NOT met'}; "
          f"database < 58.8 MB (a tenth of 588 MB) -> {'met' if db < 58.8e6 else 'NOT met'}")


if __name__ == "__main__":
    main()
