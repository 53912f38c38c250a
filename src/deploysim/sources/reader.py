"""Streaming reader: one source file -> validated normalized conversations, with counts.

Each row is decoded (orjson), converted by the file's format module, validated at dict level
and either accepted or quarantined with its line and reason, so that for every source
``read = accepted + quarantined`` (blank lines are not rows). The reader yields *scanned
rows* ``(line, payload, conversations, eligible_turns)``: the payload is the row's raw JSON
bytes, cheap to keep and decode again, which is how the sampler keeps only references and
builds full records for the rows it finally uses. With ``need_conversations=False`` a format's
``scan_bytes`` or ``scan`` fast path may vouch for a row without decoding or converting it;
``conversations`` is then None.
Memory is bounded by one read chunk plus ``max_row_bytes``. Given a :class:`ByteSpan` of a
plain JSONL file, the reader reads only that span (lines numbered from 1 within it), which is
how the sampler reads a large file in several processes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from deploysim.records import Conversation, Quarantined
from deploysim.sources.config import SourceConfig
from deploysim.sources.containers import OpenedSource, RowProblem, iter_batches, open_source
from deploysim.sources.formats import FORMATS
from deploysim.sources.formats.base import FormatModule, RowError, ScanBytesFunction, ScanFunction
from deploysim.sources.quarantine import QuarantineLog
from deploysim.sources.shards import ByteSpan, open_span
from deploysim.sources.validate import check_conversation, kind

#: detection votes over this many decodable object rows ...
DETECT_ROWS = 8
#: ... found among at most this many rows at the start of the file
DETECT_SCAN_LIMIT = 1000

ScannedRow = tuple[int, bytes, list[dict[str, Any]] | None, list[list[int]]]
_CONVERTER_BUGS = (KeyError, TypeError, ValueError, AttributeError, IndexError)


@dataclass
class SourceStats:
    """Counts for one source; ``read == accepted + quarantined`` always holds at the end."""

    source: str
    path: str
    format: str = "unknown"
    container: str = ""
    compression: str = ""
    read: int = 0
    accepted: int = 0
    quarantined: int = 0
    conversations: int = 0
    eligible_turns: int = 0
    bytes: int = 0
    quarantine_path: str | None = None
    examples: list[Quarantined] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.source}: read {self.read} = accepted {self.accepted} + quarantined "
                f"{self.quarantined} ({self.format}, {self.conversations} conversations, "
                f"{self.eligible_turns} eligible turns)")

    def as_record(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "examples"}


def quarantine_file(quarantine_dir: Path, label: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
    return quarantine_dir / f"{safe}.quarantine.jsonl"


class SourceReader:
    """Iterate once for scanned rows; :attr:`stats` is final when the iteration ends.

    ``formats`` is the ordered list of format modules to detect from (explicit, so tests and
    callers can pass their own); ``quarantine_dir`` None keeps only counts and examples.
    ``span`` limits reading to one byte span of a plain JSONL file (``cfg.format`` should then
    name the format, which the whole file's first rows decided). ``row_offsets`` (plain JSONL
    only) makes :meth:`row_offset` available.
    """

    def __init__(self, cfg: SourceConfig, *, quarantine_dir: Path | None = None,
                 formats: Sequence[FormatModule] = FORMATS,
                 quarantine_sink: Callable[[list[Quarantined]], Any] | None = None,
                 need_conversations: bool = True, span: ByteSpan | None = None,
                 row_offsets: bool = False) -> None:
        self.cfg = cfg
        self.span = span
        self._offsets: list[int] | None = [] if row_offsets else None
        self._batch_line = 0
        self.need_conversations = need_conversations
        self.label = cfg.label
        self.formats = tuple(formats)
        self.stats = SourceStats(source=self.label, path=str(cfg.path))
        self._qpath = quarantine_file(quarantine_dir, self.label) if quarantine_dir is not None else None
        self._sink = quarantine_sink
        self.module: FormatModule | None = None
        self.lines = 0  # physical lines read (blank ones included): the last line number

    def __iter__(self) -> Iterator[ScannedRow]:
        span = self.span
        opened = open_span(self.cfg.path, span) if span is not None else open_source(self.cfg.path,
                                                                                      self.cfg.container)
        quarantine = QuarantineLog(self.label, self._qpath, self._sink)
        st = self.stats
        st.container, st.compression = opened.container, opened.compression
        st.bytes = span.end - span.start if span is not None else self.cfg.path.stat().st_size
        try:
            self.module = self._choose_format(opened)
            st.format = self.module.NAME if self.module else "unknown"
            yield from self._scan(opened, quarantine)
        finally:
            opened.close()
            quarantine.close()
            st.quarantined = quarantine.count
            st.quarantine_path = str(quarantine.written_path) if quarantine.written_path else None
            st.examples = quarantine.examples

    def _scan(self, opened: OpenedSource, quarantine: QuarantineLog) -> Iterator[ScannedRow]:
        """The hot loop: kept flat (no per-row helper calls on the accepted path)."""
        st, label, module = self.stats, self.label, self.module
        convert = module.convert if module is not None else None
        scan: ScanFunction | None = None if self.need_conversations else getattr(module, "scan", None)
        scan_bytes: ScanBytesFunction | None = None if scan is None else getattr(module, "scan_bytes", None)
        loads, decode_error = orjson.loads, orjson.JSONDecodeError
        check = check_conversation
        defaults = self._defaults()
        read = accepted = conversations = eligible = last_line = 0
        try:
            for start, items in iter_batches(opened, self.cfg.max_row_bytes, self._offsets):
                last_line = start + len(items) - 1
                self._batch_line = start
                for offset, raw in enumerate(items):
                    if not raw:
                        continue
                    line = start + offset
                    read += 1
                    if type(raw) is not bytes:
                        quarantine.add(line, raw.reason, raw.excerpt)
                        continue
                    # the fast paths: the row's bytes (compiled), else its decoded dict
                    fast = scan_bytes(raw) if scan_bytes is not None else None
                    if fast is None:
                        try:
                            row = loads(raw)
                        except decode_error as err:
                            if not raw.strip():
                                read -= 1  # a whitespace-only line is blank, not a row
                                continue
                            quarantine.add(line, _decode_reason(raw, err), raw)
                            continue
                        if type(row) is not dict:
                            quarantine.add(line, f"row is a JSON {kind(row)}, expected an object", raw)
                            continue
                        if convert is None:
                            quarantine.add(line, "no known format matches this file", raw)
                            continue
                        if scan is not None:
                            fast = scan(row)
                    if fast is not None:
                        accepted += 1
                        conversations += len(fast)
                        for t in fast:
                            eligible += len(t)
                        yield line, raw, None, fast
                        continue
                    try:
                        convs = convert(row, source=label, index=line)
                        turns = [check(c) for c in convs]
                    except RowError as err:
                        quarantine.add(line, err.reason, raw)
                        continue
                    except _CONVERTER_BUGS as err:
                        quarantine.add(line, f"cannot convert row ({type(err).__name__}: {err})", raw)
                        continue
                    if not convs:
                        quarantine.add(line, "row holds no conversation", raw)
                        continue
                    for conv in convs:
                        meta = conv.get("meta")
                        if defaults or type(meta) is not dict or not meta.get("source"):
                            _apply_defaults(conv, label, defaults)
                    accepted += 1
                    conversations += len(convs)
                    for t in turns:
                        eligible += len(t)
                    yield line, raw, convs, turns
        finally:
            st.read, st.accepted, self.lines = read, accepted, last_line
            st.conversations, st.eligible_turns = conversations, eligible

    def _defaults(self) -> dict[str, str]:
        return {k: v for k in ("deployed_model", "product_context")
                if (v := getattr(self.cfg, k)) is not None}

    def _choose_format(self, opened: OpenedSource) -> FormatModule | None:
        """The configured format, or a vote of the detectors over the first object rows."""
        if self.cfg.format != "auto":
            for module in self.formats:
                if self.cfg.format == module.NAME:
                    return module
            known = ", ".join(m.NAME for m in self.formats)
            raise ValueError(f"{self.cfg.path}: format {self.cfg.format!r} is not available (known: {known})")
        rows = _first_object_rows(self.cfg, DETECT_SCAN_LIMIT)
        if not rows:
            return None
        votes = [0] * len(self.formats)
        detected = 0
        for row in rows:
            hits = [i for i, m in enumerate(self.formats) if _safe_detect(m, row)]
            for i in hits:
                votes[i] += 1
            detected += bool(hits)
            if detected >= DETECT_ROWS:
                break
        if not detected:
            known = ", ".join(m.NAME for m in self.formats)
            raise ValueError(f"{self.cfg.path}: no known log format matches its first rows (tried {known}); "
                             "set format in [[sources]] or check the file")
        return self.formats[max(range(len(votes)), key=lambda i: (votes[i], -i))]

    def row_offset(self, line: int) -> int:
        """File offset of the row at ``line``, for the row just yielded (valid until the
        iteration moves on; needs ``row_offsets``)."""
        assert self._offsets is not None, "row_offset needs SourceReader(row_offsets=True)"
        return self._offsets[line - self._batch_line]

    def detect_format(self) -> FormatModule | None:
        """The format module a read would use (configured, or voted on the first rows)."""
        opened = open_source(self.cfg.path, self.cfg.container)
        try:
            return self._choose_format(opened)
        finally:
            opened.close()

    def convert_payload(self, payload: bytes, line: int) -> list[dict[str, Any]]:
        """Convert a kept row again (same result as during the scan, defaults applied)."""
        if self.module is None:
            raise RuntimeError("convert_payload needs a completed scan of the source")
        return RowConverter(self.module, self.cfg)(payload, line)


class RowConverter:
    """Conversations of an accepted row of the source ``cfg`` read with ``module``, as the
    reader produced them during its scan (``[[sources]]`` defaults applied)."""

    def __init__(self, module: FormatModule, cfg: SourceConfig) -> None:
        self.convert = module.convert
        self.label = cfg.label
        self.defaults = {k: v for k in ("deployed_model", "product_context")
                         if (v := getattr(cfg, k)) is not None}

    def __call__(self, payload: bytes, line: int) -> list[dict[str, Any]]:
        convs = self.convert(orjson.loads(payload), source=self.label, index=line)
        for conv in convs:
            _apply_defaults(conv, self.label, self.defaults)
        return convs


def _first_object_rows(cfg: SourceConfig, limit: int) -> list[dict[str, Any]]:
    """Decodable object rows among the first ``limit`` rows (a separate short read)."""
    opened = open_source(cfg.path, cfg.container)
    rows: list[dict[str, Any]] = []
    seen = 0
    try:
        for _, items in iter_batches(opened, cfg.max_row_bytes):
            for raw in items:
                if type(raw) is not bytes or not raw:
                    continue
                seen += 1
                try:
                    row = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue
                if type(row) is dict:
                    rows.append(row)
                if seen >= limit:
                    return rows
    finally:
        opened.close()
    return rows


def _safe_detect(module: FormatModule, row: dict[str, Any]) -> bool:
    try:
        return bool(module.detect(row))
    except _CONVERTER_BUGS:
        return False


def _apply_defaults(conv: dict[str, Any], label: str, defaults: dict[str, str]) -> None:
    if type(conv.get("meta")) is not dict:
        conv["meta"] = {"source": label, **defaults}
        return
    meta = conv["meta"]
    if not meta.get("source"):
        meta["source"] = label
    for key, value in defaults.items():
        if meta.get(key) is None:
            meta[key] = value


def _decode_reason(raw: bytes, err: orjson.JSONDecodeError) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as uerr:
        return f"invalid UTF-8 at byte {uerr.start}"
    return f"invalid JSON: {err}"


class ConversationStream:
    """Conversations of one source as records (:func:`iter_conversations`); ``stats`` is
    final once iteration ends."""

    def __init__(self, reader: SourceReader) -> None:
        self.reader = reader

    @property
    def stats(self) -> SourceStats:
        return self.reader.stats

    def __iter__(self) -> Iterator[Conversation]:
        for _, _, convs, _ in self.reader:
            for conv in convs or ():
                yield Conversation.model_validate(conv)


def iter_conversations(cfg: SourceConfig, *, quarantine_dir: Path | None = None,
                       formats: Sequence[FormatModule] = FORMATS) -> ConversationStream:
    """Stream the conversations of one source as :class:`Conversation` records."""
    return ConversationStream(SourceReader(cfg, quarantine_dir=quarantine_dir, formats=formats))


__all__ = [
    "ConversationStream",
    "RowConverter",
    "RowProblem",
    "ScannedRow",
    "SourceReader",
    "SourceStats",
    "iter_conversations",
    "quarantine_file",
]
