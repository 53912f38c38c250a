"""One synthetic production conversation, with the ground truth of what it contains.

For each user turn the composer draws a *situation* (benign, over-refusal bait, a disallowed
request or a misalignment-inviting situation) from the spec's per-context rates, a scenario
for it from the phrase bank, whether the deployed model misbehaves from the spec's
conditional rate, then renders the request, the tool trace (if any) and the answer. The row
is pure OpenAI chat format; the truth (situations, exhibited categories, planted personal
data) is returned beside it, never inside it.
"""

from __future__ import annotations

import random
import string
from bisect import bisect
from dataclasses import dataclass
from datetime import date
from itertools import accumulate
from typing import Any

import orjson

from deploysim.demo.bank import PhraseBank, Scenario
from deploysim.demo.pii import PiiFactory, PlantedPii
from deploysim.demo.spec import BENIGN, DISALLOWED, OVER_REFUSAL_BAIT, REFUSED_WHEN_ALIGNED, CorpusSpec
from deploysim.demo.templates import SlotValues, Template
from deploysim.demo.tools import FLOWS, TOOL_SCHEMAS

_ID_CHARS = string.ascii_letters + string.digits


@dataclass(frozen=True)
class TurnTruth:
    """What one user turn was and what the deployed model's answer to it exhibits."""

    message_index: int  # index of the user message in ``messages``
    situation: str
    scenario: str  # where the scenario is defined in the phrase bank
    answered: bool
    misbehaved: bool
    categories: tuple[str, ...]  # taxonomy categories the answer exhibits (empty: none)


@dataclass(frozen=True)
class DemoConversation:
    row: dict[str, Any]  # the log row, OpenAI chat format
    context: str
    language: str
    turns: tuple[TurnTruth, ...]
    planted: tuple[PlantedPii, ...]


def exhibited_categories(situation: str, misbehaved: bool) -> tuple[str, ...]:
    """Categories an answer exhibits: a refused benign request is ``over_refusal`` (and a
    ``refusal``); an aligned answer to most disallowed requests is a ``refusal``; a
    misbehaving answer to a category's situation exhibits that category."""
    if situation in (BENIGN, OVER_REFUSAL_BAIT):
        return ("over_refusal", "refusal") if misbehaved else ()
    if misbehaved:
        return (situation,)
    return ("refusal",) if situation in REFUSED_WHEN_ALIGNED else ()


def _cum(weights: dict[Any, float]) -> tuple[tuple[Any, ...], tuple[float, ...]]:
    return tuple(weights), tuple(accumulate(weights.values()))


def _draw(rng: random.Random, table: tuple[tuple[Any, ...], tuple[float, ...]]) -> Any:
    """One item of ``(items, cumulative weights)`` (what ``rng.choices`` does, minus its overhead)."""
    items, cum = table
    return items[min(bisect(cum, rng.random() * cum[-1]), len(items) - 1)]


class ConversationComposer:
    """Draws conversations for one :class:`CorpusSpec` from one :class:`PhraseBank`."""

    def __init__(self, spec: CorpusSpec, bank: PhraseBank) -> None:
        bank.check_covers(spec, {name: flow.provides for name, flow in FLOWS.items()})
        self.spec = spec
        self.bank = bank
        self._contexts = _cum(dict(spec.context_mix))
        self._languages = {c: _cum(dict(m)) for c, m in spec.language_mix.items()}
        self._turns = {c: _cum(dict(m)) for c, m in spec.turn_mix.items()}
        self._situations: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {}
        for ctx in spec.context_mix:
            names, probs = spec.situation_weights(ctx)
            self._situations[ctx] = (names, tuple(accumulate(probs)))
        self._tools_json = {c: orjson.dumps(list(t)) for c, t in TOOL_SCHEMAS.items()}

    def compose(self, rng: random.Random, conversation_id: str, timestamp: str,
                user_id_hash: str) -> DemoConversation:
        """One conversation; ``rng`` is its own stream, so conversations are independent."""
        spec, bank = self.spec, self.bank
        ctx = _draw(rng, self._contexts)
        lang = _draw(rng, self._languages[ctx])
        n_turns = _draw(rng, self._turns[ctx])
        unanswered_last = rng.random() < spec.unanswered_rate
        people = bank.people
        pii = PiiFactory(rng, lang, names=people.names, streets=people.streets, cities=people.cities,
                         email_domains=people.email_domains)
        today = date.fromisoformat(timestamp[:10])
        convo = SlotValues(rng, pii, today, bank.slot_banks(lang), bank.field_bank)
        system = rng.choice(bank.system_prompts[ctx]).render(convo)
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
        connectors = bank.languages[lang].shared["connector"]
        turns: list[TurnTruth] = []
        used: set[tuple[str, int]] = set()
        tool_rate = spec.benign_tool_rate.get(ctx, 0.0)
        for t in range(n_turns):
            situation = _draw(rng, self._situations[ctx])
            tool = (rng.random() < tool_rate) if situation == BENIGN and tool_rate > 0 else None
            scenario, request_tpl = self._pick_request(rng, lang, ctx, situation, tool, used)
            slots = convo.child()
            request = request_tpl.render(slots)
            if t > 0:
                request = rng.choice(connectors).render(slots) + request
            messages.append({"role": "user", "content": request})
            user_index = len(messages) - 1
            if unanswered_last and t == n_turns - 1:
                turns.append(TurnTruth(user_index, situation, scenario.where, False, False, ()))
                break
            misbehaved = rng.random() < spec.misbehaviour_rates[situation]
            self._answer(rng, scenario, situation, misbehaved, slots, messages)
            turns.append(TurnTruth(user_index, situation, scenario.where, True, misbehaved,
                                   exhibited_categories(situation, misbehaved)))
        row = {
            "id": conversation_id,
            "messages": messages,
            "tools": orjson.loads(self._tools_json[ctx]),
            "metadata": {"product_context": ctx, "deployed_model": spec.deployed_model,
                         "timestamp": timestamp, "language": lang, "user_id_hash": user_id_hash,
                         "client": rng.choice(_CLIENTS[ctx])},
        }
        return DemoConversation(row, ctx, lang, tuple(turns), tuple(pii.planted))

    def _pick_request(self, rng: random.Random, lang: str, ctx: str, situation: str, tool: bool | None,
                      used: set[tuple[str, int]]) -> tuple[Scenario, Template]:
        """A scenario and one of its request templates, avoiding (three tries) a request the
        conversation already asked."""
        for _ in range(3):
            scenario = self.bank.pick(rng, lang, ctx, situation, tool)
            asked = (scenario.where, rng.randrange(len(scenario.requests)))
            if asked not in used:
                break
        used.add(asked)
        return scenario, scenario.requests[asked[1]]

    @staticmethod
    def _answer(rng: random.Random, scenario: Scenario, situation: str, misbehaved: bool, slots: SlotValues,
                messages: list[dict[str, Any]]) -> None:
        """Append the deployed model's turn: tool rounds (unless it refuses outright), then the answer."""
        refuses_benign = misbehaved and situation in (BENIGN, OVER_REFUSAL_BAIT)
        if scenario.flow is not None and not refuses_benign and situation not in DISALLOWED:
            for round_ in FLOWS[scenario.flow].run(slots):
                ids = ["call_" + "".join(rng.choices(_ID_CHARS, k=24)) for _ in round_]
                messages.append({"role": "assistant", "content": None, "tool_calls": [
                    {"id": cid, "type": "function",
                     "function": {"name": step.name, "arguments": orjson.dumps(step.arguments).decode()}}
                    for cid, step in zip(ids, round_, strict=True)]})
                messages.extend({"role": "tool", "tool_call_id": cid, "content": step.output}
                                for cid, step in zip(ids, round_, strict=True))
        answer = rng.choice(scenario.bad if misbehaved else scenario.good)
        messages.append({"role": "assistant", "content": answer.render(slots)})


_CLIENTS: dict[str, tuple[str, ...]] = {
    "general_chat": ("web", "web", "ios", "android", "desktop"),
    "coding_assistant": ("vscode", "vscode", "jetbrains", "cli", "web"),
    "customer_support": ("web_widget", "web_widget", "ios", "android"),
}
