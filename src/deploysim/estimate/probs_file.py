"""Reading per-query elicitation probabilities for ``deploysim tail`` (CSV or JSONL).

One row per query. The probability comes from a named column, or the first present of
``p``, ``probability``, ``elicitation_probability``, ``prob``; or, when the file has
``successes`` and ``samples`` columns (repeated sampling at temperature > 0), from the
smoothed estimate (s + ½)/(K + 1). A row without a usable value is an error naming the file
and line: a silently skipped query would bias the tail.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from deploysim.estimate.tail import FloatArray, smoothed_probability

PROBABILITY_COLUMNS = ("p", "probability", "elicitation_probability", "prob")
COUNT_COLUMNS = ("successes", "samples")


@dataclass(frozen=True)
class ProbabilityColumn:
    """The probabilities read and where they came from (a column name or ``successes/samples``)."""

    values: FloatArray
    source: str
    path: Path


def read_probabilities(path: Path, column: str | None = None) -> ProbabilityColumn:
    """Read one probability per row from ``path`` (``.csv``/``.tsv`` or ``.jsonl``/``.ndjson``)."""
    rows = list(_rows(path))
    if not rows:
        raise ValueError(f"{path}: no rows")
    header = rows[0][1].keys()
    if column is not None:
        if column not in header:
            raise ValueError(f"{path}: no column {column!r} (columns: {', '.join(header)})")
        return ProbabilityColumn(_column(path, rows, column), column, path)
    for name in PROBABILITY_COLUMNS:
        if name in header:
            return ProbabilityColumn(_column(path, rows, name), name, path)
    if all(name in header for name in COUNT_COLUMNS):
        successes, samples = _column(path, rows, "successes"), _column(path, rows, "samples")
        bad = np.flatnonzero((samples <= 0) | (successes < 0) | (successes > samples))
        if bad.size:
            line = rows[int(bad[0])][0]
            raise ValueError(f"{path}:{line}: need 0 <= successes <= samples and samples > 0")
        return ProbabilityColumn(smoothed_probability(successes, samples), "successes/samples", path)
    raise ValueError(f"{path}: no probability column; name one with --column, or provide one of "
                     f"{', '.join(PROBABILITY_COLUMNS)} or successes + samples "
                     f"(columns: {', '.join(header)})")


def _column(path: Path, rows: list[tuple[int, dict[str, Any]]], name: str) -> FloatArray:
    values = np.empty(len(rows), dtype=np.float64)
    for i, (line, row) in enumerate(rows):
        raw = row.get(name)
        try:
            value = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(f"{path}:{line}: column {name!r} is {raw!r}, not a number") from None
        if not np.isfinite(value):
            raise ValueError(f"{path}:{line}: column {name!r} is {raw!r}, not a finite number")
        values[i] = value
    return values


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        with path.open("rb") as handle:
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError as err:
                    raise ValueError(f"{path}:{line_no}: invalid JSON ({err})") from None
                if not isinstance(row, dict):
                    raise ValueError(f"{path}:{line_no}: expected a JSON object per line")
                yield line_no, row
    elif suffix in (".csv", ".tsv"):
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ",")
            for row in reader:
                yield reader.line_num, dict(row)
    else:
        raise ValueError(f"{path}: unsupported file type {suffix!r}; use .csv, .tsv or .jsonl")
