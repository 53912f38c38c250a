"""Export a run's tables to Parquet and JSONL, streaming, with a manifest.

Nested values (messages, contexts, intervals) are written as JSON text columns so that every
table has one flat, stable schema that any Parquet reader understands; scalar columns keep
their types. The manifest records what was exported, row counts, and the privacy policy that
applied to the run (DESIGN.md: reports and exports state it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from deploysim.records import utc_now
from deploysim.store import RunStore

EXPORT_TABLES: tuple[str, ...] = ("prefixes", "completions", "judgments", "estimates", "comparisons",
                                  "grader_validations", "sources", "quarantine", "stage_reports")
_BATCH = 5000


@dataclass
class ExportResult:
    out_dir: Path
    rows: dict[str, int] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


def _flatten(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (orjson.dumps(v).decode() if isinstance(v, dict | list | tuple) else v)
            for k, v in row.items()}


def _arrow_type(values: set[type]) -> pa.DataType:
    values.discard(type(None))
    if not values:
        return pa.string()
    if values <= {bool}:
        return pa.bool_()
    if values <= {int}:
        return pa.int64()
    if values <= {int, float}:
        return pa.float64()
    return pa.string()


def _schema(store: RunStore, table: str) -> pa.Schema | None:
    """First pass: the column set and a type per column, over every row."""
    seen: dict[str, set[type]] = {}
    for row in store.iter_table_json(table):
        for k, v in _flatten(row).items():
            seen.setdefault(k, set()).add(type(v))
    if not seen:
        return None
    return pa.schema([(k, _arrow_type(set(v))) for k, v in seen.items()])


def _coerce(value: Any, typ: pa.DataType) -> Any:
    if value is None:
        return None
    if pa.types.is_string(typ) and not isinstance(value, str):
        return orjson.dumps(value).decode() if not isinstance(value, bool | int | float) else str(value)
    if pa.types.is_floating(typ) and isinstance(value, int):
        return float(value)
    return value


def _batches(store: RunStore, table: str, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    names = schema.names
    buf: list[dict[str, Any]] = []
    for row in store.iter_table_json(table):
        buf.append(_flatten(row))
        if len(buf) >= _BATCH:
            yield _to_batch(buf, names, schema)
            buf = []
    if buf:
        yield _to_batch(buf, names, schema)


def _to_batch(rows: list[dict[str, Any]], names: list[str], schema: pa.Schema) -> pa.RecordBatch:
    cols = [pa.array([_coerce(r.get(n), schema.field(n).type) for r in rows], type=schema.field(n).type)
            for n in names]
    return pa.RecordBatch.from_arrays(cols, schema=schema)


def export_run(store: RunStore, out_dir: Path | None = None, *,
               formats: tuple[str, ...] = ("parquet", "jsonl"),
               tables: tuple[str, ...] = EXPORT_TABLES) -> ExportResult:
    """Write each table as ``<table>.parquet`` and/or ``<table>.jsonl`` plus ``manifest.json``."""
    unknown = set(formats) - {"parquet", "jsonl"}
    if unknown:
        raise ValueError(f"unknown export format(s): {', '.join(sorted(unknown))} (use parquet, jsonl)")
    out = out_dir or (store.run_dir / "export")
    out.mkdir(parents=True, exist_ok=True)
    result = ExportResult(out)
    for table in tables:
        count = 0
        if "jsonl" in formats:
            path = out / f"{table}.jsonl"
            with path.open("wb") as fh:
                for row in store.iter_table_json(table):
                    fh.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
                    count += 1
            result.files.append(path)
        if "parquet" in formats:
            schema = _schema(store, table)
            path = out / f"{table}.parquet"
            if schema is None:
                pq.write_table(pa.table({"empty": pa.array([], type=pa.string())}), path)
            else:
                with pq.ParquetWriter(path, schema, compression="zstd") as writer:
                    n = 0
                    for batch in _batches(store, table, schema):
                        writer.write_batch(batch)
                        n += batch.num_rows
                count = count or n
            result.files.append(path)
        result.rows[table] = count
    manifest = {
        "exported_at": utc_now(),
        "run_dir": str(store.run_dir),
        "formats": list(formats),
        "rows": result.rows,
        "privacy": privacy_statement(store),
    }
    (out / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    result.files.append(out / "manifest.json")
    return result


def privacy_statement(store: RunStore) -> dict[str, Any]:
    """What de-identification and send policy applied to this run, from its metadata."""
    policy = store.get_meta("privacy_policy") or {}
    deid = store.stage_reports("deidentify")
    counts = store.deidentified_counts()
    return {
        "policy": policy,
        "prefixes_by_deidentification_status": counts,
        "deidentify": deid,
    }
