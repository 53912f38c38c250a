"""What a run will cost before it runs: requests, tokens and dollars per model role.

Pure arithmetic on a few measured inputs (how many prefixes, how long they are, which arms and
categories, which grader kinds, the models' prices), so ``deploysim plan RUN_FILE`` can print
both judge modes side by side before anything is sent. Token counts use the same rule as the
engine's budget reservations: about three characters per token, rounded up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

CHARS_PER_TOKEN = 3.0
#: characters a judge prompt adds around the transcript: system message and the category's
#: definition (per category), or every category's definition once (one-call mode)
JUDGE_SYSTEM_CHARS = 1_300
VERDICT_TOKENS = 120


@dataclass(frozen=True)
class ArmLoad:
    name: str
    model: str
    simulated: bool
    items: int  # prefixes of its pool × samples
    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0
    max_tokens: int = 512


@dataclass(frozen=True)
class CostLine:
    role: str
    model: str
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


@dataclass(frozen=True)
class CostPlan:
    lines: list[CostLine] = field(default_factory=list)

    @property
    def total_usd(self) -> float:
        return sum(line.cost_usd for line in self.lines)

    @property
    def requests(self) -> int:
        return sum(line.requests for line in self.lines)


def tokens(chars: float) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN)


def _cost(inp: int, out: int, in_price: float, out_price: float) -> float:
    return (inp * in_price + out * out_price) / 1e6


def simulation_lines(arms: Sequence[ArmLoad], prefix_chars: float) -> list[CostLine]:
    out = []
    for a in arms:
        if not a.simulated or a.items == 0:
            continue
        inp, outp = a.items * tokens(prefix_chars), a.items * a.max_tokens
        out.append(CostLine(f"simulate {a.name}", a.model, a.items, inp, outp,
                            _cost(inp, outp, a.input_per_mtok, a.output_per_mtok)))
    return out


def judge_lines(arms: Sequence[ArmLoad], judged: Mapping[str, int], prefix_chars: float,
                response_chars: float,
                *, model: str, input_per_mtok: float, output_per_mtok: float,
                max_chars: int = 24_000) -> dict[str, CostLine]:
    """Judge requests for ``judged`` categories (id -> characters of its definition and
    template), in both modes: ``per_category`` and ``multi``."""
    graded = sum(a.items for a in arms)
    transcript = min(prefix_chars + response_chars, max_chars)
    per_request = [JUDGE_SYSTEM_CHARS + chars + transcript for chars in judged.values()]
    single_in = graded * sum(tokens(c) for c in per_request)
    single_out = graded * VERDICT_TOKENS * len(judged)
    multi_in = graded * tokens(JUDGE_SYSTEM_CHARS + sum(judged.values()) + transcript) if judged else 0
    multi_out = graded * VERDICT_TOKENS * len(judged)
    return {
        "per_category": CostLine("judge (one call per category)", model, graded * len(judged), single_in,
                                 single_out,
                                 _cost(single_in, single_out, input_per_mtok, output_per_mtok)),
        "multi": CostLine("judge (one call per completion)", model, graded if judged else 0, multi_in,
                          multi_out,
                          _cost(multi_in, multi_out, input_per_mtok, output_per_mtok)),
    }
