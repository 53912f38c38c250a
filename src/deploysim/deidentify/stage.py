"""The de-identification stage: conversations, sampled prefixes, or a whole run directory.

Entry points:

* :func:`deidentify_conversations` -- a stream of conversations in, the same conversations
  with pseudonyms out (``deploysim deidentify IN --out OUT``);
* :func:`make_prefix_transform` -- what the pipeline applies to sampled prefixes before it
  stores them (``deploysim run``);
* :func:`deidentify_run` -- rewrites a run's stored prefixes that were not de-identified, and
  their completions (``deploysim deidentify --run RUN_DIR``).

Work is batched: the texts of a batch of records are collected (:mod:`slots`), detected in one
call (:mod:`batch`), then each record is rewritten with its own :class:`PseudonymTable`.
The original <-> pseudonym mapping never reaches the run store; it is written only to the
separate re-identification file when one is configured.
"""

from __future__ import annotations

import os
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO, Any, TypeVar

import orjson
from pydantic import BaseModel, Field

from deploysim.deidentify.batch import DetectorPool
from deploysim.deidentify.config import DeidentifyConfig
from deploysim.deidentify.engine import detector_hash
from deploysim.deidentify.pseudonyms import Finding, PseudonymTable, deidentify_text
from deploysim.deidentify.slots import Edit, NameEdit, map_completion, map_conversation, map_prefix
from deploysim.records import Completion, Conversation, Prefix
from deploysim.stages import StageReport
from deploysim.store.db import RunStore

STAGE = "deidentify"
RECORDS_PER_BATCH = 256
CACHE_TEXTS = 20_000
T = TypeVar("T")
#: a record rewritten by one walk over its text fields (see :mod:`slots`)
Rewrite = Callable[[Edit, NameEdit], T]


class DeidReport(BaseModel):
    """What ran and what it replaced; stored as the ``deidentify`` stage report."""

    detector: dict[str, Any] = Field(default_factory=dict)
    config_hash: str = ""
    counts: dict[str, int] = Field(default_factory=dict)
    conversations: int = 0
    prefixes: int = 0
    completions: int = 0
    texts: int = 0
    already_deidentified: int = 0
    reidentification_file: str | None = None

    def add_counts(self, counts: Counter[str] | dict[str, int]) -> None:
        for entity, n in counts.items():
            self.counts[entity] = self.counts.get(entity, 0) + n

    def merge(self, other: DeidReport) -> None:
        """Add ``other``'s counts (same detector) to this report."""
        self.add_counts(other.counts)
        for name in ("conversations", "prefixes", "completions", "texts", "already_deidentified"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if not self.config_hash:
            self.detector, self.config_hash = other.detector, other.config_hash
        self.reidentification_file = self.reidentification_file or other.reidentification_file


class ReidentificationWriter:
    """Append-only JSONL of ``{conversation_id, pseudonym, entity_type, original}``, readable by
    the owner only. It exists only when the user asks for it."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file: IO[bytes] = os.fdopen(fd, "ab")
        self._seen: set[tuple[str, str, str]] = set()

    def write(self, conversation_id: str, table: PseudonymTable) -> None:
        for original, (entity, pseudonym) in table.known.items():
            key = (conversation_id, pseudonym, original)
            if key not in self._seen:
                self._seen.add(key)
                self._file.write(
                    orjson.dumps(
                        {
                            "conversation_id": conversation_id,
                            "pseudonym": pseudonym,
                            "entity_type": entity,
                            "original": original,
                        }
                    )
                    + b"\n"
                )

    def close(self) -> None:
        self._file.close()


class Deidentifier:
    """Detector pool + findings cache + report (+ re-identification file). A context manager."""

    def __init__(
        self, cfg: DeidentifyConfig, report: DeidReport | None = None, pool: DetectorPool | None = None
    ) -> None:
        self.cfg = cfg
        self.report = report if report is not None else DeidReport()
        self._pool = pool if pool is not None else DetectorPool(cfg)
        self._own_pool = pool is None
        self._cache: OrderedDict[str, list[Finding]] = OrderedDict()
        self._names = cfg.entities is None or "USERNAME" in cfg.entities
        self._reid: ReidentificationWriter | None = None
        if cfg.reidentification_file is not None:
            self._reid = ReidentificationWriter(cfg.reidentification_file)
            self.report.reidentification_file = str(cfg.reidentification_file)

    def __enter__(self) -> Deidentifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._reid is not None:
            self._reid.close()
            self._reid = None
        if self._own_pool:
            self._pool.close()

    def describe(self) -> None:
        """Fill in the detector description and hash (once, from the process that detects)."""
        if not self.report.config_hash:
            self.report.detector = self._pool.describe()
            self.report.config_hash = detector_hash(self.report.detector)

    def detect(self, texts: Sequence[str]) -> dict[str, list[Finding]]:
        """Findings per distinct text; repeated texts (system prompts, tool schemas) hit a cache."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        for text, found in zip(todo, self._pool.detect(todo) if todo else [], strict=True):
            self._cache[text] = found
        out = {}
        for text in texts:
            self._cache.move_to_end(text)
            out[text] = self._cache[text]
        while len(self._cache) > CACHE_TEXTS:
            self._cache.popitem(last=False)
        self.report.texts += len(texts)
        return out

    def rewrite(self, records: Sequence[tuple[str, Rewrite[T]]]) -> list[T]:
        """``(conversation id, rewrite)`` pairs -> rewritten records, one pseudonym table each."""
        texts: list[str] = []

        def collect(text: str) -> str:
            if text.strip():
                texts.append(text)
            return text

        for _, rewrite in records:
            rewrite(collect, lambda name: name)
        found = self.detect(texts)
        self.describe()  # after detecting: ask the process that detected (a worker if pooled)
        out = []
        for conversation_id, rewrite in records:
            table = PseudonymTable()

            def edit(text: str, table: PseudonymTable = table) -> str:
                return deidentify_text(text, found[text], table)[0] if text.strip() else text

            def edit_name(name: str, table: PseudonymTable = table) -> str:
                if not self._names:
                    return name
                table.replaced["USERNAME"] += 1
                return table.pseudonym("USERNAME", name)

            out.append(rewrite(edit, edit_name))
            self.report.add_counts(table.replaced)
            if self._reid is not None:
                self._reid.write(conversation_id, table)
        return out

    def conversations(self, batch: Sequence[Conversation]) -> list[Conversation]:
        todo = [(c.id, _conversation_rewrite(c)) for c in batch if c.meta.deidentified != "deidentified"]
        done = iter(self.rewrite(todo))
        self.report.conversations += len(todo)
        self.report.already_deidentified += len(batch) - len(todo)
        return [c if c.meta.deidentified == "deidentified" else next(done) for c in batch]

    def prefixes(
        self, batch: Sequence[Prefix], completions: dict[str, list[Completion]] | None = None
    ) -> list[tuple[Prefix, list[Completion]]]:
        """Prefixes (with their stored completions, rewritten with the prefix's pseudonyms so the
        names in a response match the prompt's)."""
        completions = completions or {}
        todo = [p for p in batch if p.context.deidentified != "deidentified"]
        rewritten = dict(
            zip(
                (p.id for p in todo),
                self.rewrite(
                    [(p.conversation_id, _prefix_rewrite(p, completions.get(p.id, []))) for p in todo]
                ),
                strict=True,
            )
        )
        self.report.prefixes += len(todo)
        self.report.completions += sum(len(completions.get(p.id, [])) for p in todo)
        self.report.already_deidentified += len(batch) - len(todo)
        return [rewritten.get(p.id, (p, completions.get(p.id, []))) for p in batch]


def _conversation_rewrite(conv: Conversation) -> Rewrite[Conversation]:
    return lambda edit, edit_name: map_conversation(conv, edit, edit_name)


def _prefix_rewrite(
    prefix: Prefix, completions: list[Completion]
) -> Rewrite[tuple[Prefix, list[Completion]]]:
    def rewrite(edit: Edit, edit_name: NameEdit) -> tuple[Prefix, list[Completion]]:
        new_prefix = map_prefix(prefix, edit, edit_name)
        return new_prefix, [map_completion(c, edit, edit_name) for c in completions]

    return rewrite


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


# -- entry points --------------------------------------------------------------------------------
def deidentify_conversations(
    convs: Iterable[Conversation], cfg: DeidentifyConfig, *, report: DeidReport | None = None
) -> Iterator[Conversation]:
    """The conversations with consistent pseudonyms, ``meta.deidentified = "deidentified"``.
    Conversations already de-identified pass through unchanged. Memory stays bounded by the
    batch size, however long the stream."""
    if not cfg.enabled:
        yield from convs
        return
    with Deidentifier(cfg, report) as deid:
        for batch in _batches(convs, RECORDS_PER_BATCH):
            yield from deid.conversations(batch)


def make_prefix_transform(
    cfg: DeidentifyConfig, *, store: RunStore | None = None, report: DeidReport | None = None
) -> Callable[[Iterable[Prefix]], Iterator[Prefix]]:
    """The pipeline's transform of sampled prefixes before they are stored. Pseudonyms are
    numbered by first appearance in conversation order, so two prefixes of one conversation
    agree. When the stream ends the report goes to ``store`` (stage ``deidentify``)."""

    def transform(prefixes: Iterable[Prefix]) -> Iterator[Prefix]:
        if not cfg.enabled:
            yield from prefixes
            return
        this_call = DeidReport()
        with Deidentifier(cfg, this_call) as deid:
            for batch in _batches(prefixes, RECORDS_PER_BATCH):
                for prefix, _ in deid.prefixes(batch):
                    yield prefix
        if report is not None:
            report.merge(this_call)
        if store is not None:
            save_report(store, this_call)

    return transform


def deidentify_run(store: RunStore, cfg: DeidentifyConfig, *, report: DeidReport | None = None) -> DeidReport:
    """Rewrite every stored prefix that is not de-identified (and its completions) in place,
    then VACUUM so the replaced text does not linger in free pages of the database file."""
    this_call = DeidReport()
    with Deidentifier(cfg, this_call) as deid:
        for status in ("raw", "synthetic"):
            for batch in _batches(store.iter_prefixes(deidentified=status), RECORDS_PER_BATCH):
                stored = {p.id: store.completions_for_prefix(p.id) for p in batch}
                pairs = deid.prefixes(batch, stored)
                store.replace_prefixes(p for p, _ in pairs)
                store.replace_completions(c for _, cs in pairs for c in cs)
    if this_call.prefixes:
        save_report(store, this_call)
    store.vacuum()
    if report is not None:
        report.merge(this_call)
    return this_call


def save_report(store: RunStore, report: DeidReport) -> None:
    """Store the report under its detector hash, adding to the counts of earlier invocations
    with the same detector (a resumed run keeps one report per detector configuration)."""
    key = report.config_hash or "disabled"
    previous = store.stage_reports(STAGE).get(key)
    merged = DeidReport.model_validate(previous) if previous is not None else DeidReport()
    merged.merge(report)
    store.put_stage_report(STAGE, key, merged.model_dump(mode="json"))


@dataclass(frozen=True)
class DeidentifyInputs:
    """The run-level de-identification stage's inputs: its config section."""

    config: DeidentifyConfig


def run(inputs: DeidentifyInputs, store: RunStore) -> StageReport:
    """The stage entry point: rewrite the run's stored text that is not de-identified yet."""
    report = deidentify_run(store, inputs.config)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items())) or "nothing found"
    return StageReport(stage=STAGE, status="ran",
                       detail=f"{report.prefixes} prefixes, {report.completions} completions rewritten "
                              f"({counts})",
                       data=report.model_dump(mode="json"))
