"""The contract between the reader core and the per-format converters.

A format module (``sources/formats/<name>.py``) exposes:

* ``NAME: str`` -- the value of ``SourceConfig.format`` that selects it;
* ``detect(row: dict) -> bool`` -- a cheap check on one decoded row (no deep validation);
* ``convert(row: dict, *, source: str, index: int) -> list[dict]`` -- zero or more
  *normalized conversation dicts* for that row (an OpenAssistant tree gives one per
  root-to-leaf path), raising :class:`RowError` for an unusable row.

Optionally, a format whose logs are huge may also expose ``scan(row: dict) ->
list[list[int]] | None``: a fast path that, for a row it can vouch for, returns exactly the
eligible turns that validating ``convert(row, ...)`` would give (one list per
conversation) without building the dicts, and returns None whenever it is not sure (the core
then converts and validates as usual). The sampler uses it when it needs no metadata.
A format may further expose ``scan_bytes(raw: bytes) -> list[list[int]] | None``, the same
promise made on the row's undecoded JSON bytes: when it returns turns, the row is valid JSON
and ``scan`` would return the same turns; None sends the row down the dict path.

A normalized conversation dict has exactly the JSON shape of
``deploysim.records.Conversation.model_dump(mode="json")``::

    {"id": str,
     "messages": [{"role", "content", "tool_calls": [{"id", "name", "arguments"}],
                   "tool_call_id", "name"}],
     "tools": [{"name", "description", "parameters"}],
     "meta": {"source", "deployed_model", "product_context", "timestamp", "language",
              "deidentified", "extra"}}

Optional keys may be omitted. Content that is not text (images, audio, files) is not
inlined: the converter keeps the text parts and lists the indices of such messages in
``meta["extra"][NON_TEXT_KEY]`` so sampling can exclude those turns. The core
(``sources/validate.py``) checks roles, types and emptiness of every dict and quarantines
failures with the reason, so converters stay small: they reshape, they do not police.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

#: ``meta.extra`` key listing indices of messages that had non-text content parts
NON_TEXT_KEY = "non_text_messages"


class RowError(ValueError):
    """A row that cannot be used; ``reason`` goes verbatim into the quarantine file."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FormatModule(Protocol):
    """Structural type of a format module (modules satisfy it by their attributes)."""

    NAME: str

    def detect(self, row: dict[str, Any]) -> bool: ...

    def convert(self, row: dict[str, Any], *, source: str, index: int) -> list[dict[str, Any]]: ...


#: type of the optional ``scan`` fast path of a format module
ScanFunction = Callable[[dict[str, Any]], "list[list[int]] | None"]
#: type of the optional ``scan_bytes`` fast path (the same promise, on the row's JSON bytes)
ScanBytesFunction = Callable[[bytes], "list[list[int]] | None"]


def conversation_id(source: str, index: int, suffix: str | int | None = None) -> str:
    """Default id when the log has none: stable across runs for the same file and row."""
    base = f"{source}:{index}"
    return base if suffix is None else f"{base}:{suffix}"
