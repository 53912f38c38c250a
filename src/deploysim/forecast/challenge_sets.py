"""Challenging-prompt set files -> challenge-pool prefixes (the readers behind
:func:`deploysim.forecast.challenge.load_challenge_set`).

A file is read as a stream of *items*, each either ``(line, Prefix)`` (pool ``challenge``,
no continuation: a prompt set has no production response to keep) or a :class:`Quarantined`
row with its line and reason, so a set's counts always reconcile. Three kinds of file:

- CSV sets, the layout detected from the header: XSTest (``id, prompt, type``: the prompts
  file or a ``model_completions`` file), HarmBench (``Behavior, ..., BehaviorID``; a
  ``ContextString`` goes before the behaviour as in HarmBench's DirectRequest test cases,
  ``context + "\\n\\n---\\n\\n" + behavior``), AdvBench (``goal, target``), or any CSV with a
  ``prompt`` column;
- prompt lists: JSONL / JSON / Parquet rows that are a string, or an object with a
  ``prompt`` string (Arena-Hard questions, moderation samples);
- conversations in any log format of :mod:`deploysim.sources`, each cut at its last user turn.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import orjson

from deploysim.records import Conversation, DeidStatus, Message, Prefix, PrefixContext, Quarantined
from deploysim.sources.config import SourceConfig, SourceFormat
from deploysim.sources.containers import RowProblem, iter_batches, open_source
from deploysim.sources.reader import SourceReader

CHALLENGE_POOL = "challenge"
#: separator HarmBench puts between a contextual behaviour's context and the behaviour
HARMBENCH_CONTEXT_SEPARATOR = "\n\n---\n\n"
MAX_ROW_BYTES = 8 * 1024 * 1024

Item = tuple[int, Prefix] | Quarantined
LOG_FORMATS: tuple[str, ...] = tuple(f for f in get_args(SourceFormat) if f != "auto")


@dataclass(frozen=True)
class CsvLayout:
    """A CSV set layout, recognised by its (case-insensitive) header columns."""

    name: str
    required: tuple[str, ...]
    #: published benchmark prompts are researcher-written, not user traffic: they are marked
    #: ``synthetic`` (de-identification would rewrite the very names some prompts are about)
    published: bool


CSV_LAYOUTS: tuple[CsvLayout, ...] = (
    CsvLayout("xstest", ("id", "prompt", "type"), published=True),
    CsvLayout("harmbench", ("behavior", "behaviorid"), published=True),
    CsvLayout("advbench", ("goal", "target"), published=True),
    CsvLayout("prompt_csv", ("prompt",), published=False),
)
CSV_FORMATS: tuple[str, ...] = ("csv", *(layout.name for layout in CSV_LAYOUTS))
PROMPT_LIST = "prompts"


@dataclass(frozen=True)
class SetOptions:
    """What every item of one set shares."""

    name: str  # set name: prefix of conversation ids built from the set's own ids
    source: str  # label in quarantine rows (the file name, as the log readers use)
    product_context: str


def challenge_prefix(conversation_id: str, turn: int, messages: tuple[Message, ...],
                     context: PrefixContext, stratum: str | None) -> Prefix:
    """A challenge-pool prefix; its id differs from a production prefix with the same text."""
    return Prefix(id=Prefix.make_id(conversation_id, turn, messages, context.tools, pool=CHALLENGE_POOL),
                  conversation_id=conversation_id, turn_index=turn, messages=messages, context=context,
                  stratum=stratum, pool="challenge")


def _prompt_prefix(opts: SetOptions, original_id: str, prompt: str, stratum: str | None,
                   deidentified: DeidStatus, language: str | None = None) -> Prefix:
    context = PrefixContext(product_context=opts.product_context, language=language,
                            deidentified=deidentified)
    return challenge_prefix(f"{opts.name}:{original_id}", 0, (Message(role="user", content=prompt),),
                            context, stratum)


# -- CSV sets --------------------------------------------------------------------------------
def detect_csv_layout(path: Path, columns: list[str], wanted: str = "csv") -> CsvLayout:
    """The first layout whose required columns are all present (or the one asked for)."""
    present = set(columns)
    for layout in CSV_LAYOUTS:
        if wanted in ("csv", layout.name) and set(layout.required) <= present:
            return layout
    expected = "; ".join(f"{layout.name}: {', '.join(layout.required)}" for layout in CSV_LAYOUTS
                         if wanted in ("csv", layout.name))
    found = ", ".join(columns) or "none"
    raise ValueError(f"{path}: unknown challenge-set CSV header; columns found: {found} "
                     f"(expected {expected})")


def _cell(row: dict[str, str], *names: str) -> str:
    """The first non-empty cell among ``names`` (stripped), or ''."""
    for name in names:
        value = row.get(name, "").strip()
        if value:
            return value
    return ""


def _csv_row(layout: CsvLayout, row: dict[str, str], number: int) -> tuple[str, str, str | None] | str:
    """(original id, prompt, stratum) of a data row, or the reason it is unusable."""
    if layout.name == "harmbench":
        behavior, context = row.get("behavior", ""), row.get("contextstring", "")
        if not behavior.strip():
            return "empty Behavior"
        prompt = f"{context}{HARMBENCH_CONTEXT_SEPARATOR}{behavior}" if context.strip() else behavior
        return (_cell(row, "behaviorid") or str(number), prompt,
                _cell(row, "semanticcategory", "category") or None)
    column = "goal" if layout.name == "advbench" else "prompt"
    prompt = row.get(column, "")
    if not prompt.strip():
        return f"empty {column}"
    if layout.name == "xstest":
        return _cell(row, "id") or str(number), prompt, _cell(row, "type") or None
    if layout.name == "advbench":
        return str(number), prompt, None
    return _cell(row, "id", "uid") or str(number), prompt, _cell(row, "category", "type") or None


def read_csv_set(path: Path, opts: SetOptions, wanted: str = "csv") -> tuple[str, Iterator[Item]]:
    """(layout name, items) of a CSV set; the header is read (and checked) at once."""
    fh = path.open(encoding="utf-8-sig", newline="")
    try:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file, expected a CSV header")
        columns = [c.strip().lower() for c in header]
        if len(set(columns)) != len(columns):
            raise ValueError(f"{path}: repeated column names in the header: {', '.join(header)}")
        layout = detect_csv_layout(path, columns, wanted)
    except (UnicodeDecodeError, csv.Error) as err:
        fh.close()
        raise ValueError(f"{path}: cannot read the CSV header ({err})") from None
    except BaseException:
        fh.close()
        raise
    return layout.name, _csv_items(path, fh, reader, columns, layout, opts)


def _csv_items(path: Path, fh: Any, reader: Any, columns: list[str], layout: CsvLayout,
               opts: SetOptions) -> Iterator[Item]:
    deid: DeidStatus = "synthetic" if layout.published else "raw"
    language = "en" if layout.published else None
    line = reader.line_num + 1  # physical line where the next row starts
    number = 0
    try:
        for cells in reader:
            start, line = line, reader.line_num + 1
            if not cells:
                continue  # a blank line is not a row
            number += 1
            excerpt = ",".join(cells)[:200]
            if len(cells) != len(columns):
                yield Quarantined(source=opts.source, line=start, excerpt=excerpt,
                                  reason=f"{len(cells)} fields, the header has {len(columns)}")
                continue
            fields = _csv_row(layout, dict(zip(columns, cells, strict=True)), number)
            if isinstance(fields, str):
                yield Quarantined(source=opts.source, line=start, reason=fields, excerpt=excerpt)
                continue
            original_id, prompt, stratum = fields
            yield start, _prompt_prefix(opts, original_id, prompt, stratum, deid, language)
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text after line {line - 1} ({err.reason})") from None
    except csv.Error as err:
        raise ValueError(f"{path}, line {reader.line_num}: malformed CSV ({err})") from None
    finally:
        fh.close()


# -- prompt lists (JSONL / JSON / Parquet) ---------------------------------------------------
def _first_row(path: Path) -> Any:
    """The first decodable row of a JSON-container file (None if there is none)."""
    opened = open_source(path)
    try:
        for _, items in iter_batches(opened, MAX_ROW_BYTES):
            for raw in items:
                if type(raw) is bytes and raw.strip():
                    try:
                        return orjson.loads(raw)
                    except orjson.JSONDecodeError:
                        return None
    finally:
        opened.close()
    return None


def is_prompt_list(path: Path) -> bool:
    """Rows that are strings, or objects with a ``prompt`` string and no ``messages``."""
    row = _first_row(path)
    return isinstance(row, str) or (isinstance(row, dict) and isinstance(row.get("prompt"), str)
                                    and "messages" not in row)


def read_prompt_list(path: Path, opts: SetOptions) -> Iterator[Item]:
    opened = open_source(path)
    try:
        for start, items in iter_batches(opened, MAX_ROW_BYTES):
            for offset, raw in enumerate(items):
                line = start + offset
                if isinstance(raw, RowProblem):
                    yield Quarantined(source=opts.source, line=line, reason=raw.reason,
                                      excerpt=raw.excerpt[:200].decode("utf-8", "replace"))
                    continue
                if not raw.strip():
                    continue
                excerpt = raw[:200].decode("utf-8", "replace")
                try:
                    row = orjson.loads(raw)
                except orjson.JSONDecodeError as err:
                    yield Quarantined(source=opts.source, line=line, reason=f"invalid JSON: {err}",
                                      excerpt=excerpt)
                    continue
                if isinstance(row, dict):
                    prompt, stratum = row.get("prompt"), row.get("category")
                    oid = row.get("id", row.get("uid"))
                else:
                    prompt, oid, stratum = row, None, None
                if not isinstance(prompt, str) or not prompt.strip():
                    yield Quarantined(source=opts.source, line=line, excerpt=excerpt,
                                      reason="expected a non-empty string or an object with a non-empty "
                                             "'prompt' string")
                    continue
                yield line, _prompt_prefix(opts, str(oid) if oid is not None else str(line), prompt,
                                           stratum if isinstance(stratum, str) and stratum else None, "raw")
    finally:
        opened.close()


# -- conversation logs (any reader format) ---------------------------------------------------
def cut_at_last_user_turn(conv: Conversation, product_context: str) -> Prefix | None:
    """The conversation up to and including its last user message with text (None if it has
    none); the product context, system prompt and tools come from the log."""
    turns = [i for i, m in enumerate(conv.messages) if m.role == "user" and m.content.strip()]
    if not turns:
        return None
    turn, meta, first = turns[-1], conv.meta, conv.messages[0]
    context = PrefixContext(
        product_context=meta.product_context or product_context,
        system_prompt=first.content if first.role in ("system", "developer") else None,
        tools=conv.tools, language=meta.language, deployed_model=meta.deployed_model,
        timestamp=meta.timestamp, deidentified=meta.deidentified)
    category = meta.extra.get("category")
    return challenge_prefix(conv.id, turn, conv.messages[: turn + 1], context,
                            category if isinstance(category, str) and category else None)


def read_log_set(path: Path, opts: SetOptions, fmt: str = "auto") -> tuple[SourceReader, Iterator[Item]]:
    """(reader, items): rows the reader rejects come out as quarantined items after the
    conversations; ``reader.stats`` holds the reader's own row counts once exhausted."""
    rejected: list[Quarantined] = []
    cfg = SourceConfig(path=path, format=fmt, product_context=opts.product_context,
                       name=opts.source, max_row_bytes=MAX_ROW_BYTES)
    reader = SourceReader(cfg, quarantine_sink=rejected.extend, need_conversations=True)

    def items() -> Iterator[Item]:
        for line, _payload, convs, _turns in reader:
            if convs is None:  # only a reader built with need_conversations=False skips them
                raise RuntimeError(f"{path}, line {line}: the reader returned no conversations")
            for conv in convs:
                record = Conversation.model_validate(conv)
                prefix = cut_at_last_user_turn(record, opts.product_context)
                if prefix is None:
                    yield Quarantined(source=opts.source, line=line,
                                      reason=f"conversation {record.id} has no user message with text")
                else:
                    yield line, prefix
        yield from rejected

    return reader, items()
