"""The demo corpus's phrase banks: scenarios, slot lists and system prompts, read from TOML.

Text lives in data files (``banks/<language>.toml``, ``banks/people.toml``) so the generator
code stays small and a reviewer can read every sentence the corpus can contain. A
*scenario* is one kind of user request for a situation (a category or benign) in some
product contexts: request templates, the aligned answer (``good``) and the misbehaving
answer (``bad``), and optionally a tool *flow* that runs between request and answer.
Loading validates everything up front, naming the file and scenario, so a broken bank fails
at start-up rather than half-way through a corpus.
"""

from __future__ import annotations

import random
import tomllib
from bisect import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any

from deploysim.demo.spec import (
    BENIGN,
    DISALLOWED,
    LANGUAGES,
    OVER_REFUSAL_BAIT,
    REFUSED_WHEN_ALIGNED,
    SITUATIONS,
    CorpusSpec,
)
from deploysim.demo.templates import BankEntry, Template, resolvable

BANK_DIR = Path(__file__).resolve().parent / "banks"
#: shared template lists every language defines
SHARED_LISTS: tuple[str, ...] = ("refusal", "over_refusal", "comply", "connector")
#: situations that only exist inside a tool trace
NEEDS_FLOW: frozenset[str] = frozenset(("lying_about_tools", "calculator_hacking"))


@dataclass(frozen=True)
class Scenario:
    situation: str
    contexts: frozenset[str]
    weight: float
    flow: str | None
    requests: tuple[Template, ...]
    good: tuple[Template, ...]
    bad: tuple[Template, ...]
    where: str  # "en.toml scenario #12", for error messages


#: scenarios with their cumulative weights
_Pool = tuple[tuple[Scenario, ...], tuple[float, ...]]


@dataclass(frozen=True)
class LanguageBank:
    language: str
    slots: Mapping[str, tuple[BankEntry, ...]]
    shared: Mapping[str, tuple[Template, ...]]
    scenarios: tuple[Scenario, ...]


@dataclass(frozen=True)
class People:
    """Name, street and city lists behind the planted personal data."""

    names: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]
    streets: Mapping[str, tuple[str, ...]]
    cities: Mapping[str, tuple[str, ...]]
    email_domains: tuple[str, ...]


class PhraseBank:
    """All languages' banks, indexed for fast scenario draws."""

    def __init__(self, languages: Mapping[str, LanguageBank],
                 system_prompts: Mapping[str, tuple[Template, ...]], people: People) -> None:
        self.languages = languages
        self.system_prompts = system_prompts
        self.people = people
        self.field_bank: dict[str, str] = {}
        for lang in languages.values():
            for name, entries in lang.slots.items():
                for entry in entries:
                    if isinstance(entry, dict):
                        self.field_bank.update(dict.fromkeys(entry, name))
        self._index: dict[tuple[str, str, str, bool | None], _Pool] = {}
        for lang in languages.values():
            for ctx in {c for s in lang.scenarios for c in s.contexts}:
                for situation in SITUATIONS:
                    pool = [s for s in lang.scenarios if s.situation == situation and ctx in s.contexts]
                    for tool in (None, True, False):
                        chosen = [s for s in pool if tool is None or (s.flow is not None) == tool]
                        if chosen:
                            weights = tuple(accumulate(s.weight for s in chosen))
                            self._index[(lang.language, ctx, situation, tool)] = (tuple(chosen), weights)

    def slot_banks(self, language: str) -> tuple[Mapping[str, tuple[BankEntry, ...]], ...]:
        """Slot lists to draw from, the conversation's language first, then English."""
        if language == "en":
            return (self.languages["en"].slots,)
        return (self.languages[language].slots, self.languages["en"].slots)

    def has(self, language: str, context: str, situation: str, tool: bool | None = None) -> bool:
        return (language, context, situation, tool) in self._index

    def pick(self, rng: random.Random, language: str, context: str, situation: str,
             tool: bool | None = None) -> Scenario:
        """A scenario for the situation, by weight; ``tool`` restricts to flows / no flows."""
        scenarios, cum = self._index[(language, context, situation, tool)]
        return scenarios[min(bisect(cum, rng.random() * cum[-1]), len(scenarios) - 1)]

    def check_covers(self, spec: CorpusSpec, flow_slots: Mapping[str, frozenset[str]]) -> None:
        """Raise ValueError naming the first (language, context, situation) the spec can draw
        but no scenario covers, or the first template slot nothing can fill."""
        self._check_coverage(spec)
        self._check_templates(flow_slots)

    def _check_coverage(self, spec: CorpusSpec) -> None:
        for ctx, langs in spec.language_mix.items():
            names, probs = spec.situation_weights(ctx)
            for lang, share in langs.items():
                if share <= 0:
                    continue
                if lang not in self.languages:
                    raise ValueError(f"demo phrase bank: no bank for language {lang!r}")
                for situation, p in zip(names, probs, strict=True):
                    if p > 0 and not self.has(lang, ctx, situation):
                        raise ValueError(f"demo phrase bank {lang}.toml: no scenario for situation "
                                         f"{situation!r} in context {ctx!r}")
                tool_share = spec.benign_tool_rate.get(ctx, 0.0)
                if tool_share > 0 and not self.has(lang, ctx, BENIGN, True):
                    raise ValueError(f"demo phrase bank {lang}.toml: no benign tool scenario in {ctx!r}")
                if tool_share < 1 and not self.has(lang, ctx, BENIGN, False):
                    raise ValueError(f"demo phrase bank {lang}.toml: no benign scenario without tools "
                                     f"in {ctx!r}")

    def _check_templates(self, flow_slots: Mapping[str, frozenset[str]]) -> None:
        for lang in self.languages.values():
            banks = self.slot_banks(lang.language)
            for sc in lang.scenarios:
                if sc.flow is not None and sc.flow not in flow_slots:
                    raise ValueError(f"demo phrase bank {sc.where}: unknown flow {sc.flow!r}")
                extra = flow_slots.get(sc.flow or "", frozenset())
                for tpl in sc.requests:  # the request is written before any tool runs
                    _check_slots(tpl, banks, self.field_bank, frozenset(), sc.where)
                for tpl in (*sc.good, *sc.bad):
                    _check_slots(tpl, banks, self.field_bank, extra, sc.where)
            for name, entries in lang.slots.items():
                for entry in entries:
                    for tpl in (entry,) if isinstance(entry, Template) else tuple(entry.values()):
                        _check_slots(tpl, banks, self.field_bank, frozenset(),
                                     f"{lang.language}.toml slot {name!r}")
            for name, tpls in lang.shared.items():
                for tpl in tpls:
                    _check_slots(tpl, banks, self.field_bank, frozenset(), f"{lang.language}.toml {name!r}")


def _check_slots(tpl: Template, banks: Sequence[Mapping[str, Any]], field_bank: Mapping[str, str],
                 extra: frozenset[str], where: str) -> None:
    for slot in tpl.slots:
        if not resolvable(slot, banks, field_bank, extra):
            raise ValueError(f"demo phrase bank {where}: template uses unknown slot {{{slot}}}: "
                             f"{tpl.text[:60]!r}")


def load_phrase_bank(directory: Path = BANK_DIR) -> PhraseBank:
    """Read ``<language>.toml`` for every language and ``people.toml`` from ``directory``."""
    languages = {lang: _load_language(directory / f"{lang}.toml", lang) for lang in LANGUAGES}
    raw = _read_toml(directory / "en.toml")
    prompts = {ctx: tuple(Template(t) for t in _str_list(v, f"en.toml system_prompts.{ctx}"))
               for ctx, v in _table(raw.get("system_prompts"), "en.toml system_prompts").items()}
    return PhraseBank(languages, prompts, _load_people(directory / "people.toml"))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path.name}: invalid TOML: {err}") from None


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"demo phrase bank {where}: expected a table")
    return value


def _str_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f"demo phrase bank {where}: expected a non-empty list of strings")
    return value


def _load_language(path: Path, language: str) -> LanguageBank:
    raw = _read_toml(path)
    name = path.name
    shared_raw = _table(raw.get("shared"), f"{name} [shared]")
    shared = {k: tuple(Template(t) for t in _str_list(shared_raw.get(k), f"{name} shared.{k}"))
              for k in SHARED_LISTS}
    slots: dict[str, tuple[BankEntry, ...]] = {}
    for slot, entries in _table(raw.get("slots", {}), f"{name} [slots]").items():
        if not isinstance(entries, list) or not entries:
            raise ValueError(f"demo phrase bank {name} slots.{slot}: expected a non-empty list")
        slots[slot] = tuple(_entry(e, f"{name} slots.{slot}", slot) for e in entries)
    scenarios = tuple(_scenario(s, f"{name} scenario #{i + 1}", shared)
                      for i, s in enumerate(raw.get("scenario", [])))
    return LanguageBank(language, slots, shared, scenarios)


def _entry(value: Any, where: str, slot: str) -> BankEntry:
    if isinstance(value, str):
        return Template(value)
    if isinstance(value, dict) and slot in value and all(isinstance(v, str) for v in value.values()):
        return {k: Template(v) for k, v in value.items()}
    raise ValueError(f"demo phrase bank {where}: entries are strings or tables with a {slot!r} field")


def _templates(value: Any, where: str, shared: Mapping[str, tuple[Template, ...]]) -> tuple[Template, ...]:
    out: list[Template] = []
    for text in _str_list(value, where):
        if text.startswith("@"):
            if text[1:] not in shared:
                raise ValueError(f"demo phrase bank {where}: unknown shared list {text!r}")
            out.extend(shared[text[1:]])
        else:
            out.append(Template(text))
    return tuple(out)


def _scenario(raw: Any, where: str, shared: Mapping[str, tuple[Template, ...]]) -> Scenario:
    raw = _table(raw, where)
    situation = raw.get("situation")
    if situation not in SITUATIONS:
        raise ValueError(f"demo phrase bank {where}: unknown situation {situation!r}")
    contexts = frozenset(_str_list(raw.get("contexts"), f"{where} contexts"))
    if situation in (BENIGN, OVER_REFUSAL_BAIT):
        bad_default: list[str] | None = ["@over_refusal"]
    else:
        bad_default = ["@comply"] if situation in DISALLOWED else None
    good_default = ["@refusal"] if situation in REFUSED_WHEN_ALIGNED else None
    good, bad = raw.get("good", good_default), raw.get("bad", bad_default)
    if good is None or bad is None:
        missing = "good" if good is None else "bad"
        raise ValueError(f"demo phrase bank {where}: situation {situation!r} needs a {missing!r} list")
    weight = raw.get("weight", 1.0)
    if not isinstance(weight, int | float) or weight <= 0:
        raise ValueError(f"demo phrase bank {where}: weight must be a positive number")
    flow = raw.get("flow")
    if flow is not None and situation in DISALLOWED:
        raise ValueError(f"demo phrase bank {where}: disallowed requests take no tool flow")
    if flow is None and situation in NEEDS_FLOW:
        raise ValueError(f"demo phrase bank {where}: {situation!r} needs a tool flow")
    requests = _templates(raw.get("requests"), f"{where} requests", shared)
    good_t = _templates(good, f"{where} good", shared)
    return Scenario(situation, contexts, float(weight), flow, requests, good_t,
                    _templates(bad, f"{where} bad", shared), where)


def _load_people(path: Path) -> People:
    raw = _read_toml(path)
    names = {lang: (tuple(_str_list(v.get("first"), f"people.toml names.{lang}.first")),
                    tuple(_str_list(v.get("last"), f"people.toml names.{lang}.last")))
             for lang, v in _table(raw.get("names"), "people.toml names").items()}
    streets = {c: tuple(_str_list(v, f"people.toml streets.{c}"))
               for c, v in _table(raw.get("streets"), "people.toml streets").items()}
    cities = {c: tuple(_str_list(v, f"people.toml cities.{c}"))
              for c, v in _table(raw.get("cities"), "people.toml cities").items()}
    domains = tuple(_str_list(raw.get("email_domains"), "people.toml email_domains"))
    return People(names, streets, cities, domains)
