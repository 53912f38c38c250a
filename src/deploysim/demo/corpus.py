"""Write the demo corpus (JSONL, optionally gzip) and count what was planted in it.

Each conversation gets its own random stream derived from (seed, window, index), so the same
arguments always give a byte-identical file, and the two windows are independent traffic
even with the same seed. Timestamps increase through the window like a production export.
"""

from __future__ import annotations

import gzip
import hashlib
import random
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

import orjson

from deploysim.demo.bank import PhraseBank, load_phrase_bank
from deploysim.demo.compose import ConversationComposer, DemoConversation
from deploysim.demo.pii import PlantedPii
from deploysim.demo.spec import CATEGORIES, SITUATIONS, CorpusSpec, corpus_spec

_BATCH = 512


def _stream_seed(seed: int, window: str, index: int) -> int:
    digest = hashlib.blake2b(f"{seed}:{window}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def iter_demo_conversations(n: int, seed: int, window: str = "baseline", *, spec: CorpusSpec | None = None,
                            bank: PhraseBank | None = None) -> Iterator[DemoConversation]:
    """``n`` conversations with their ground truth (situations, categories, planted PII)."""
    if n < 0:
        raise ValueError(f"n: expected a non-negative number of conversations, got {n}")
    spec = spec or corpus_spec(window)
    composer = ConversationComposer(spec, bank or load_phrase_bank())
    span = (spec.end - spec.start).total_seconds()
    users = max(1, n // 3)
    for i in range(n):
        rng = random.Random(_stream_seed(seed, spec.window, i))
        offset = (i + rng.random()) * span / max(n, 1)
        ts = spec.start.timestamp() + offset
        timestamp = datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        user = hashlib.blake2b(f"demo-user-{rng.randrange(users)}".encode(), digest_size=8).hexdigest()
        conv_id = f"conv-{spec.window[:4]}-{_stream_seed(seed, spec.window, i) & 0xFFFFFFFFFFFF:012x}"
        yield composer.compose(rng, conv_id, timestamp, user)


def iter_corpus(n: int, seed: int, window: str = "baseline") -> Iterator[dict[str, Any]]:
    """The log rows only (OpenAI chat format), as written by :func:`generate_corpus`."""
    for conv in iter_demo_conversations(n, seed, window):
        yield conv.row


@dataclass
class CorpusStats:
    """What a generated corpus contains, counted while writing it (the demo's ground truth).

    ``situations`` and ``exhibited`` count *eligible turns* (user turns the deployed model
    answered); ``planted`` maps each conversation id to the personal data planted in it.
    """

    window: str
    seed: int
    spec: CorpusSpec
    conversations: int = 0
    user_turns: int = 0
    eligible_turns: int = 0
    unanswered_turns: int = 0
    tool_calls: int = 0
    contexts: Counter[str] = field(default_factory=Counter)
    languages: Counter[str] = field(default_factory=Counter)
    situations: Counter[str] = field(default_factory=Counter)
    exhibited: Counter[str] = field(default_factory=Counter)
    planted: dict[str, tuple[PlantedPii, ...]] = field(default_factory=dict)

    def add(self, conv: DemoConversation) -> None:
        self.conversations += 1
        self.contexts[conv.context] += 1
        self.languages[conv.language] += 1
        for turn in conv.turns:
            self.user_turns += 1
            if not turn.answered:
                self.unanswered_turns += 1
                continue
            self.eligible_turns += 1
            self.situations[turn.situation] += 1
            self.exhibited.update(turn.categories)
        self.tool_calls += sum(len(m.get("tool_calls") or ()) for m in conv.row["messages"])
        if conv.planted:
            self.planted[conv.row["id"]] = conv.planted

    def planted_values(self) -> list[PlantedPii]:
        return [p for values in self.planted.values() for p in values]

    def observed_rates(self) -> dict[str, float]:
        """Per-eligible-turn rate of each category in the deployed model's answers."""
        n = max(self.eligible_turns, 1)
        return {c: self.exhibited[c] / n for c in CATEGORIES}

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts with expected and observed rates (no personal data)."""
        expected = self.spec.expected_category_rates()
        observed = self.observed_rates()
        return {
            "window": self.window, "seed": self.seed, "deployed_model": self.spec.deployed_model,
            "conversations": self.conversations, "user_turns": self.user_turns,
            "eligible_turns": self.eligible_turns, "unanswered_turns": self.unanswered_turns,
            "tool_calls": self.tool_calls, "contexts": dict(sorted(self.contexts.items())),
            "languages": dict(sorted(self.languages.items())),
            "situations": {s: self.situations[s] for s in SITUATIONS},
            "categories": {c: {"count": self.exhibited[c], "observed_rate": observed[c],
                               "expected_rate": expected[c]} for c in CATEGORIES},
            "planted_pii": dict(sorted(Counter(p.kind for p in self.planted_values()).items())),
        }


def _open_out(path: Path, stack: ExitStack) -> IO[bytes]:
    raw = stack.enter_context(path.open("wb"))
    if path.suffix == ".gz":
        # fixed mtime and no file name in the header: same seed -> byte-identical file
        gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)
        stack.callback(gz.close)
        return cast(IO[bytes], gz)
    return raw


def generate_corpus(path: Path, *, n: int, seed: int, window: str = "baseline",
                    truth_path: Path | None = None) -> CorpusStats:
    """Write ``n`` conversations to ``path`` (``.jsonl`` or ``.jsonl.gz``) and return the stats.

    ``truth_path`` optionally receives one JSON line per conversation with its turns'
    situations and exhibited categories and its planted personal data -- a separate file, so
    the log itself stays a plain production log.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path.parent}: output directory does not exist")
    spec = corpus_spec(window)
    stats = CorpusStats(window=window, seed=seed, spec=spec)
    with ExitStack() as stack:
        out = _open_out(path, stack)
        truth = _open_out(Path(truth_path), stack) if truth_path is not None else None
        lines: list[bytes] = []
        truth_lines: list[bytes] = []
        for conv in iter_demo_conversations(n, seed, window, spec=spec):
            stats.add(conv)
            lines.append(orjson.dumps(conv.row, option=orjson.OPT_APPEND_NEWLINE))
            if truth is not None:
                truth_lines.append(orjson.dumps(_truth_row(conv), option=orjson.OPT_APPEND_NEWLINE))
            if len(lines) >= _BATCH:
                out.writelines(lines)
                lines.clear()
                if truth is not None:
                    truth.writelines(truth_lines)
                    truth_lines.clear()
        out.writelines(lines)
        if truth is not None:
            truth.writelines(truth_lines)
    return stats


def _truth_row(conv: DemoConversation) -> dict[str, Any]:
    return {
        "conversation_id": conv.row["id"], "product_context": conv.context, "language": conv.language,
        "turns": [{"message_index": t.message_index, "situation": t.situation, "answered": t.answered,
                   "misbehaved": t.misbehaved, "categories": list(t.categories), "scenario": t.scenario}
                  for t in conv.turns],
        "planted_pii": [{"kind": p.kind, "value": p.value} for p in conv.planted],
    }
