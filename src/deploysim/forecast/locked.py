"""Locked forecast files: written once, before the outcome is known, never edited.

The file is JSON ``{"content_hash": ..., "payload": {...}}`` where ``content_hash`` is the
SHA-256 of the payload's canonical JSON. Writing refuses an existing path (exclusive create)
and leaves the file read-only; :func:`verify` recomputes the hash, so any edit — even one that
keeps the JSON valid — is detected.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import orjson

from deploysim.forecast.model import FORMAT_VERSION, ForecastPayload
from deploysim.hashing import bytes_hash, canonical_json


class ForecastIntegrityError(ValueError):
    """The file's content does not match its hash, or is not a forecast file."""


def payload_hash(payload: ForecastPayload) -> str:
    return bytes_hash(canonical_json(payload))


def write_locked(payload: ForecastPayload, path: Path) -> str:
    """Write the forecast to ``path`` (which must not exist) and return its content hash.

    Atomic and exclusive: the body is written and synced to a temporary file beside ``path``,
    which is then hard-linked to ``path`` (the link fails if ``path`` exists). A crash at any
    instant leaves either no forecast or the complete one, never a partial file."""
    digest = payload_hash(payload)
    body = orjson.dumps({"content_hash": digest, "payload": payload.model_dump(mode="json")},
                        option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise FileExistsError(f"{path}: a forecast file already exists there; forecasts are never "
                                  "rewritten (lock a new version instead)") from None
    finally:
        tmp.unlink(missing_ok=True)
    _sync_dir(path.parent)
    return digest


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def verify(path: Path) -> tuple[ForecastPayload, str]:
    """Load a forecast file and check its hash; returns (payload, hash)."""
    try:
        doc = orjson.loads(path.read_bytes())
    except OSError as err:
        raise FileNotFoundError(f"{path}: cannot read forecast file ({err.strerror})") from None
    except orjson.JSONDecodeError as err:
        raise ForecastIntegrityError(f"{path}: not JSON ({err})") from None
    if not isinstance(doc, dict) or "content_hash" not in doc or "payload" not in doc:
        raise ForecastIntegrityError(f"{path}: not a forecast file (needs content_hash and payload)")
    version = doc["payload"].get("format_version") if isinstance(doc["payload"], dict) else None
    if version != FORMAT_VERSION:
        raise ForecastIntegrityError(f"{path}: forecast format version {version!r}; this deploysim reads "
                                     f"version {FORMAT_VERSION} (score the file with the deploysim release "
                                     "that wrote it)")
    try:
        payload = ForecastPayload.model_validate(doc["payload"])
    except ValueError as err:
        raise ForecastIntegrityError(f"{path}: payload does not validate: {err}") from None
    digest = payload_hash(payload)
    if digest != doc["content_hash"]:
        raise ForecastIntegrityError(f"{path}: content hash mismatch (file says {doc['content_hash']}, "
                                     f"content hashes to {digest}): the forecast was edited")
    return payload, digest
