"""Files to rows: compression, container detection, and splitting into raw JSON rows.

Every container is turned into the same thing, a stream of batches ``(first_line, items)``
where each item is the raw JSON bytes of one row, ``b""`` for a blank line, or a
:class:`RowProblem` for a row that could not even be cut out (oversized, broken stream).
Rows stay bytes until the reader decodes them, so a sampled row can be kept as its bytes and
decoded again later, and memory is bounded by the batch size and ``max_row_bytes``.

Line numbers are 1-based physical lines for JSONL, element numbers for a JSON document
(array elements, or the top-level values of a pretty-printed file), row numbers for Parquet.
For a plain JSONL file the splitter can also report each row's byte offset in the file, so
that a row can be kept as ``(offset, length)`` and read back later.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate, count
from operator import add
from pathlib import Path
from typing import Any, BinaryIO, Literal, cast

import orjson

Container = Literal["jsonl", "json", "parquet"]
Compression = Literal["none", "gzip"]

CHUNK_BYTES = 1 << 20
HEAD_BYTES = 64 << 10
HEAD_STEP = 8 << 10
PARQUET_BATCH_ROWS = 2048
_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
_STREAM_ERRORS = (OSError, EOFError, zlib.error)


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A row that could not be cut out of the file; goes straight to quarantine."""

    reason: str
    excerpt: bytes = b""


@dataclass(frozen=True)
class OpenedSource:
    """An open file with what was found out about it."""

    path: Path
    compression: Compression
    container: Container
    stream: BinaryIO | None  # None for Parquet, which pyarrow opens itself
    head: bytes  # bytes already read from ``stream`` (the reader must use them first)
    head_at: int = 0  # file offset of ``head[0]`` (plain files: after a byte-order mark)

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()


def open_source(path: Path, container: str = "auto") -> OpenedSource:
    """Open ``path`` and detect compression (magic bytes) and container (``container`` if
    given, else: Parquet magic or suffix; a first non-blank character ``[`` or a first line
    that is just ``{`` means a JSON document; anything else is JSONL)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with path.open("rb") as probe:
        magic = probe.read(4)
    sniffed_parquet = magic == _PARQUET_MAGIC or path.suffix == ".parquet"
    if container == "parquet" or (container == "auto" and sniffed_parquet):
        return OpenedSource(path, "none", "parquet", None, b"")
    compression: Compression = "gzip" if magic[:2] == _GZIP_MAGIC else "none"
    # the stream outlives this function (the reader closes it), so no context manager here
    stream: BinaryIO = (gzip.open(path, "rb") if compression == "gzip"  # type: ignore[assignment]  # noqa: SIM115
                        else path.open("rb"))
    head, stream = _read_head(stream)
    with_bom = len(head)
    head = head.removeprefix(codecs.BOM_UTF8)
    if container == "auto":
        container = _sniff(head)
    if container not in ("jsonl", "json"):
        stream.close()
        raise ValueError(f"{path}: unknown container {container!r} (auto, jsonl, json, parquet)")
    return OpenedSource(path, compression, container, stream, head,  # type: ignore[arg-type]
                        with_bom - len(head))


def _read_head(stream: BinaryIO) -> tuple[bytes, BinaryIO]:
    """The first bytes, read in small steps so that a stream broken early (a truncated gzip)
    still yields what precedes the break; the break itself is then reported as a row."""
    parts: list[bytes] = []
    size = 0
    while size < HEAD_BYTES:
        try:
            part = stream.read(HEAD_STEP)
        except _STREAM_ERRORS as err:
            stream.close()
            return b"".join(parts), cast(BinaryIO, _BrokenStream(err))
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts), stream


class _BrokenStream(io.RawIOBase):
    """Stands in for a stream that failed while its head was read: re-raises on read."""

    def __init__(self, err: BaseException) -> None:
        self._err = err

    def read(self, size: int = -1) -> bytes:
        raise EOFError(str(self._err))


def _sniff(head: bytes) -> Container:
    text = head.lstrip()
    if text.startswith(b"["):
        return "json"
    first_line = text.split(b"\n", 1)[0].strip()
    return "json" if first_line == b"{" else "jsonl"


def iter_batches(src: OpenedSource, max_row_bytes: int,
                 offsets: list[int] | None = None) -> Iterator[tuple[int, list[Any]]]:
    """``(first_line, items)`` batches for any container (see the module docstring). With
    ``offsets`` (plain JSONL only), the list holds the file offsets of the current batch's
    items whenever a batch is yielded."""
    if offsets is not None and (src.container, src.compression) != ("jsonl", "none"):
        raise ValueError(f"{src.path}: row offsets exist for plain JSONL files only")
    if src.container == "parquet":
        return _parquet_batches(src.path, max_row_bytes)
    assert src.stream is not None
    if src.container == "json":
        return _json_batches(src.stream, src.head, max_row_bytes)
    return _jsonl_batches(src.stream, src.head, max_row_bytes, src.head_at, offsets)


# -- JSONL -------------------------------------------------------------------------------
def _jsonl_batches(stream: BinaryIO, head: bytes, max_row_bytes: int, head_at: int = 0,
                   offsets: list[int] | None = None) -> Iterator[tuple[int, list[Any]]]:
    """Split on newlines one chunk at a time. An over-long line is never held whole: once the
    unfinished line passes ``max_row_bytes`` the rest of it is skipped and it is reported as
    one oversized row. ``offsets``: see :func:`iter_batches` (``head`` starts at ``head_at``)."""
    line = 1  # number of the first line in the next batch
    rest = b""
    skipping = False  # inside an oversized line, discarding until its newline
    chunk = head
    chunk_at = rest_at = head_at  # file offsets of chunk[0] and of the unfinished line
    while chunk:
        if skipping:
            cut = chunk.find(b"\n")
            if cut < 0:
                data = _read(stream)
                if isinstance(data, RowProblem):
                    yield line, [RowProblem(f"oversized row (over {max_row_bytes} bytes)"), data]
                    return
                chunk_at += len(chunk)
                chunk = data
                continue
            if offsets is not None:
                offsets[:] = (rest_at,)
            yield line, [RowProblem(f"oversized row (over {max_row_bytes} bytes)", rest)]
            line += 1
            chunk_at += cut + 1
            chunk, rest, skipping, rest_at = chunk[cut + 1:], b"", False, chunk_at
            continue
        parts = chunk.split(b"\n")
        if rest:
            parts[0] = rest + parts[0]
        rest = parts.pop()
        if parts:
            lengths = list(map(len, parts))
            items: list[Any] = parts if max(lengths) <= max_row_bytes else [
                p if len(p) <= max_row_bytes else
                RowProblem(f"oversized row ({len(p)} bytes > {max_row_bytes})", p[:200]) for p in parts]
            if offsets is not None:  # line j starts after j earlier lines and their newlines
                lengths.pop()
                offsets[:] = map(add, accumulate(lengths, initial=rest_at), count())
            yield line, items
            line += len(parts)
        chunk_at += len(chunk)
        rest_at = chunk_at - len(rest)
        if len(rest) > max_row_bytes:
            rest, skipping = rest[:200], True
        nxt = _read(stream)
        if isinstance(nxt, RowProblem):
            yield line, [nxt]
            return
        chunk = nxt
    if skipping:
        yield line, [RowProblem(f"oversized row (over {max_row_bytes} bytes)", rest)]
    elif rest:
        if offsets is not None:
            offsets[:] = (rest_at,)
        yield line, [rest]


def _read(stream: BinaryIO, size: int | None = None) -> bytes | RowProblem:
    try:
        return stream.read(CHUNK_BYTES if size is None else size)
    except _STREAM_ERRORS as err:
        return RowProblem(f"file unreadable from here on: {type(err).__name__}: {err}")


# -- JSON document -----------------------------------------------------------------------
def _json_batches(stream: BinaryIO, head: bytes, max_row_bytes: int) -> Iterator[tuple[int, list[Any]]]:
    """Elements of a top-level array, or a sequence of top-level values, one at a time.

    Text is decoded with ``surrogateescape`` so invalid UTF-8 stays confined to the element
    that holds it (it is re-encoded byte for byte and rejected when that row is decoded). After
    a syntax error inside an array the reader re-synchronises on the next element: a value
    after a ``,`` that decodes on its own, is followed by ``,`` or ``]`` and shares a key with the
    rows read so far (so a message object inside the broken element is not taken for a row). The
    broken span becomes one quarantined item and the valid rows after it are read and counted.
    Only when no such element follows does one quarantined item cover the rest of the file.
    """
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    buf, pos, eof = utf8.decode(head), 0, False
    row_keys: set[str] = set()
    want = CHUNK_BYTES
    index = 1
    in_array = expecting_comma = False
    pos = _skip_ws(buf, pos)
    if buf.startswith("[", pos):
        in_array, pos = True, pos + 1
    while True:
        pos = _skip_ws(buf, pos)
        if pos >= len(buf):
            if eof:
                if in_array:
                    yield index, [RowProblem("JSON array is not closed with ']' at the end of the file")]
                return
            refill = _refill(stream, utf8, buf, pos, want)
            if isinstance(refill, RowProblem):
                yield index, [refill]
                return
            buf, pos, eof = refill
            continue
        if in_array and buf[pos] == "]":
            return
        if expecting_comma:
            if buf[pos] != ",":
                yield index, [RowProblem(f"expected ',' between array elements, found {buf[pos]!r}; "
                                         "the rest of the file cannot be split into rows",
                                         buf[pos:pos + 200].encode("utf-8", "surrogateescape"))]
                return
            pos, expecting_comma = pos + 1, False
            continue
        error = ""
        broken = False  # a syntax error well inside the buffer, not just a cut-off element
        try:
            _, end = _decode(decoder, buf, pos)
            complete = end < len(buf) or eof
        except json.JSONDecodeError as err:
            complete, end, error = False, -1, f"invalid JSON: {err.msg}"
            # a string cut by the buffer's end is reported at its start; anything else that
            # fails well before the end of what has been read is a real syntax error
            broken = not err.msg.startswith("Unterminated string") and err.pos < len(buf) - 64
        if not complete:
            if eof or broken or len(buf) - pos > 4 * max_row_bytes:
                reason = error if eof or broken else f"row over {max_row_bytes} bytes or invalid JSON"
                resync = _resync(decoder, buf, pos, row_keys) if in_array else None
                if resync is not None:
                    yield index, [RowProblem(reason, buf[pos:pos + 200].encode("utf-8", "surrogateescape"))]
                    index += 1
                    pos, want, expecting_comma = resync, CHUNK_BYTES, False
                    continue
                if in_array and not eof and len(buf) - pos <= 4 * max_row_bytes:
                    refill = _refill(stream, utf8, buf, pos, want)  # the next element may not be read yet
                    if not isinstance(refill, RowProblem):
                        buf, pos, eof = refill
                        want = min(want * 2, 4 * max_row_bytes)
                        continue
                yield index, [RowProblem(f"{reason}; the rest of the file cannot be split into rows",
                                         buf[pos:pos + 200].encode("utf-8", "surrogateescape"))]
                return
            refill = _refill(stream, utf8, buf, pos, want)
            if isinstance(refill, RowProblem):
                yield index, [refill]
                return
            buf, pos, eof = refill
            want = min(want * 2, 4 * max_row_bytes)
            continue
        payload = buf[pos:end].encode("utf-8", "surrogateescape")
        item: Any = payload if len(payload) <= max_row_bytes else \
            RowProblem(f"oversized row ({len(payload)} bytes > {max_row_bytes})", payload[:200])
        if not row_keys and buf[pos] == "{":
            row_keys = _keys(decoder, buf, pos)
        yield index, [item]
        index += 1
        pos, want, expecting_comma = end, CHUNK_BYTES, in_array


def _decode(decoder: json.JSONDecoder, buf: str, pos: int) -> tuple[Any, int]:
    """``raw_decode`` with nesting too deep for the recursive decoder reported as invalid JSON
    (a row, not a crash of the reader)."""
    try:
        return decoder.raw_decode(buf, pos)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", buf, pos) from None


def _keys(decoder: json.JSONDecoder, buf: str, pos: int) -> set[str]:
    try:
        value, _ = _decode(decoder, buf, pos)
    except json.JSONDecodeError:
        return set()
    return set(value) if isinstance(value, dict) else set()


def _resync(decoder: json.JSONDecoder, buf: str, pos: int, row_keys: set[str]) -> int | None:
    """Where the next array element after a broken one starts (see :func:`_json_batches`)."""
    at = buf.find(",", pos)
    while at != -1:
        start = _skip_ws(buf, at + 1)
        if start < len(buf) and buf[start] in "{[":
            try:
                value, end = _decode(decoder, buf, start)
            except json.JSONDecodeError:
                value, end = None, -1
            after = _skip_ws(buf, end) if end != -1 else -1
            fits = not row_keys or (isinstance(value, dict) and bool(row_keys & set(value)))
            if end != -1 and after < len(buf) and buf[after] in ",]" and fits:
                return start
        at = buf.find(",", at + 1)
    return None


def _skip_ws(buf: str, pos: int) -> int:
    n = len(buf)
    while pos < n and buf[pos] in " \t\r\n":
        pos += 1
    return pos


def _refill(stream: BinaryIO, utf8: codecs.IncrementalDecoder, buf: str, pos: int,
            want: int) -> tuple[str, int, bool] | RowProblem:
    data = _read(stream, want)
    if isinstance(data, RowProblem):
        return data
    text = utf8.decode(data, final=not data)
    return buf[pos:] + text, 0, not data


# -- Parquet -----------------------------------------------------------------------------
def _parquet_batches(path: Path, max_row_bytes: int) -> Iterator[tuple[int, list[Any]]]:
    """Row groups read in batches; each row becomes JSON bytes so it is handled exactly
    like a JSONL row from here on (timestamps become ISO strings)."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises several unrelated types for a broken file
        raise ValueError(f"{path}: not a readable Parquet file ({err})") from None
    line = 1
    for batch in pf.iter_batches(batch_size=PARQUET_BATCH_ROWS):
        items: list[Any] = []
        for row in batch.to_pylist():
            try:
                payload = orjson.dumps(row, default=_json_default)
            except TypeError as err:
                items.append(RowProblem(f"value not representable as JSON: {err}"))
                continue
            items.append(payload if len(payload) <= max_row_bytes else
                         RowProblem(f"oversized row ({len(payload)} bytes > {max_row_bytes})", payload[:200]))
        yield line, items
        line += len(items)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")  # UnicodeDecodeError is a ValueError -> orjson TypeError
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")
