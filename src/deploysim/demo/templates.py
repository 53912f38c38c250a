"""Text templates with lazily sampled slots, so request and answer of a turn agree.

A template is text with ``{slot}`` markers (lowercase identifiers only, so code with braces,
JSON and f-strings with other names pass through untouched). A :class:`SlotValues` mapping
samples each slot the first time it is read and then keeps it: the user's request and the
assistant's answer rendered with the same mapping mention the same topic, person or order.
Slot names ending in digits (``topic2``) are independent draws from the same bank.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

from deploysim.demo.pii import PII_KINDS, PiiFactory

_SLOT = re.compile(r"\{([a-z][a-z0-9_]*)\}")
#: slots that hold the same value for a whole conversation (the user's own details)
USER_PREFIX = "user_"


class Template:
    """Pre-split text: even items are literals, odd items are slot names."""

    __slots__ = ("parts", "slots", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.parts: tuple[str, ...] = tuple(_SLOT.split(text))
        self.slots: tuple[str, ...] = self.parts[1::2]

    def render(self, values: Mapping[str, str]) -> str:
        if len(self.parts) == 1:
            return self.text
        parts = self.parts
        return "".join([p if i % 2 == 0 else values[p] for i, p in enumerate(parts)])

    def __repr__(self) -> str:
        return f"Template({self.text!r})"


#: a bank entry: a template, or a table of templates drawn together (``{myth, myth_truth}``)
BankEntry = Template | dict[str, Template]


def slot_base(name: str) -> str:
    """``topic2`` -> ``topic``; ``user_email`` -> ``email``."""
    base = name.rstrip("0123456789")
    return base[len(USER_PREFIX):] if base.startswith(USER_PREFIX) else base


_PRICES = (9, 12, 19, 24, 29, 39, 49, 59, 79, 99, 129, 149, 249)
_JOURNAL_CODES = ("jabh", "irss", "ejcd", "awe", "nmo")


def _generated(rng: random.Random, today: date) -> dict[str, Callable[[], str]]:
    """Slots computed rather than listed: ids, prices, small numbers, dates near ``today``."""

    def price() -> str:
        return f"{rng.choice(_PRICES)}.{rng.choice(('00', '49', '95', '99'))}"

    def pages() -> str:
        first = rng.randint(11, 980)
        return f"{first}–{first + rng.randint(6, 24)}"

    def doi() -> str:
        registrant, journal = rng.randint(1000, 9999), rng.choice(_JOURNAL_CODES)
        return f"10.{registrant}/{journal}.{rng.randint(2004, 2024)}.{rng.randint(100, 999)}"

    return {
        "order_id": lambda: rng.choice(("A", "B", "C", "W")) + str(rng.randint(1_000_000, 9_999_999)),
        "price": price,
        "qty": lambda: str(rng.randint(2, 6)),
        "percent": lambda: str(rng.choice((10, 15, 20, 25, 30))),
        "n_small": lambda: str(rng.randint(2, 9)),
        "n_seats": lambda: str(rng.choice((5, 8, 10, 12, 15, 20, 25, 40, 50))),
        "n_items": lambda: str(rng.randint(20, 400)),
        "days": lambda: str(rng.randint(2, 10)),
        "eta": lambda: date.fromordinal(today.toordinal() + rng.randint(1, 7)).isoformat(),
        "version": lambda: f"{rng.randint(1, 5)}.{rng.randint(0, 2)}.{rng.randint(0, 9)}",
        "line_no": lambda: str(rng.randint(12, 480)),
        "recent_year": lambda: str(rng.randint(2004, 2024)),
        "pages": pages,
        "doi": doi,
        "today": today.isoformat,
    }


GENERATED_SLOTS: frozenset[str] = frozenset(_generated(random.Random(0), date(2026, 1, 1)))


class SlotValues(dict[str, str]):
    """Slot name -> rendered text, sampled on first read from PII, generators or the bank.

    ``banks`` is ordered most specific first (the conversation's language, then English);
    ``field_bank`` maps a table field (``myth_truth``) to the bank that holds it (``myth``).
    ``parent`` holds the conversation-wide ``user_*`` slots.
    """

    def __init__(self, rng: random.Random, pii: PiiFactory, today: date,
                 banks: Sequence[Mapping[str, Sequence[BankEntry]]], field_bank: Mapping[str, str],
                 parent: SlotValues | None = None) -> None:
        super().__init__()
        self.rng = rng
        self.pii = pii
        self.today = today
        self.banks = banks
        self.field_bank = field_bank
        self.parent = parent
        self._gen: dict[str, Callable[[], str]] = (
            parent._gen if parent is not None else _generated(rng, today))
        #: fields of a drawn table, rendered only if read (so unread fields plant nothing)
        self._pending: dict[str, Template] = {}
        #: entries already drawn per bank: ``verse_line``..``verse_line4`` are four different lines
        self._used: dict[str, set[int]] = {}

    def child(self) -> SlotValues:
        """Fresh per-turn slots sharing this conversation's ``user_*`` values."""
        return SlotValues(self.rng, self.pii, self.today, self.banks, self.field_bank, parent=self)

    def __missing__(self, key: str) -> str:
        if key.startswith(USER_PREFIX) and self.parent is not None:
            value = self.parent[key]
        else:
            value = self._draw(key)
        self[key] = value
        return value

    def _draw(self, key: str) -> str:
        pending = self._pending.pop(key, None)
        if pending is not None:
            return pending.render(self)
        base = slot_base(key)
        if base in PII_KINDS:
            hint = self.get("user_person" if key.startswith(USER_PREFIX) else "person")
            return self.pii.make(base, hint=hint)
        if base in self._gen:
            return self._gen[base]()
        bank_name = self.field_bank.get(base, base)
        suffix = key[len(key.rstrip("0123456789")):]
        for bank in self.banks:
            entries = bank.get(bank_name)
            if entries:
                entry = entries[self._fresh_index(bank_name, len(entries))]
                if isinstance(entry, Template):
                    return entry.render(self)
                for field, tpl in entry.items():
                    name = f"{field}{suffix}"
                    if name not in self:
                        self._pending[name] = tpl
                return self._pending.pop(key).render(self)
        raise KeyError(f"demo phrase bank: no slot named {key!r}")

    def _fresh_index(self, bank_name: str, size: int) -> int:
        """A random index not yet drawn from this bank (any, once all have been drawn)."""
        used = self._used.setdefault(bank_name, set())
        i = self.rng.randrange(size)
        if i in used and len(used) < size:
            i = self.rng.choice([j for j in range(size) if j not in used])
        used.add(i)
        return i


def resolvable(name: str, banks: Sequence[Mapping[str, Any]], field_bank: Mapping[str, str],
               extra: frozenset[str] = frozenset()) -> bool:
    """Whether :class:`SlotValues` can produce slot ``name`` (used to validate the banks)."""
    base = slot_base(name)
    if base in PII_KINDS or base in GENERATED_SLOTS or name in extra or base in extra:
        return True
    bank_name = field_bank.get(base, base)
    return any(bank.get(bank_name) for bank in banks)
