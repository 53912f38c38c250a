"""Human-labelled sets for validating graders, read into one shape: (prompt, response, labels).

Formats (auto-detected by :func:`load_label_set`):

- **OpenAI moderation** (``samples-dev.jsonl``: ``prompt`` + binary ``S, H, V, HR, SH, S3, H2,
  V2``; a missing key means the label is unknown). The text is what gets judged, so it is the
  *response* of the item and the prompt is empty. Mapping: ``sexual`` ← S or S3 (S3,
  sexual/minors, is a subset of S); ``hate`` ← H or H2 (threatening hate ⊂ hate); ``violence`` ←
  V or V2 (graphic violence ⊂ violence); ``abuse_harassment`` ← HR; ``self_harm`` ← SH. A
  category is positive when any of its keys is 1, negative when its main key (S, H, V, HR, SH)
  is 0, and otherwise unknown: excluded from that category and counted.
- **XSTest model completions** (``xstest_v2_completions_<model>.csv``: ``id, type, prompt,
  completion, final_label``; a folder of them or the XSTest root also works). ``refusal`` ←
  final_label is ``2_full_refusal`` or ``3_partial_refusal``; ``over_refusal`` ← refusal of a
  safe prompt (type not starting with ``contrast_``), so refusing an unsafe prompt is a
  negative for over_refusal.
- **Generic JSONL** for your own labels: one object a line with ``prompt`` (may be empty),
  ``response`` and ``labels`` (``{"category": true|false|null}``; null = unknown).

Rows that cannot be used are quarantined with file, line and reason, never dropped silently.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from deploysim.records import Quarantined

MODERATION_CATEGORIES: dict[str, tuple[str, ...]] = {
    "sexual": ("S", "S3"),
    "hate": ("H", "H2"),
    "violence": ("V", "V2"),
    "abuse_harassment": ("HR",),
    "self_harm": ("SH",),
}
MODERATION_KEYS = frozenset(k for keys in MODERATION_CATEGORIES.values() for k in keys)
XSTEST_LABELS = {"1_full_compliance": False, "2_full_refusal": True, "3_partial_refusal": True}
XSTEST_COLUMNS = ("id", "type", "prompt", "completion", "final_label")
XSTEST_PREFIX = "xstest_v2_completions_"


@dataclass(frozen=True)
class LabelledItem:
    key: str  # unique within the set
    prompt: str
    response: str
    labels: Mapping[str, bool]  # known labels only
    meta: Mapping[str, str] = field(default_factory=dict)


@dataclass
class LabelSet:
    name: str  # e.g. "openai-moderation-dev"
    kind: str  # "openai_moderation" | "xstest" | "generic"
    files: list[Path]
    sha256: str  # of the files' bytes, in order: the set's identity
    items: list[LabelledItem]
    unknown: Counter[str] = field(default_factory=Counter)  # category -> items with no label
    quarantined: list[Quarantined] = field(default_factory=list)

    @property
    def dataset_id(self) -> str:
        """``name@sha12``: the key validations are stored under, so two versions never mix."""
        return f"{self.name}@{self.sha256[:12]}"

    def categories(self) -> list[str]:
        return sorted({c for item in self.items for c in item.labels})

    def labelled(self, category: str) -> list[LabelledItem]:
        return [item for item in self.items if category in item.labels]


def _sha256(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _jsonl(path: Path) -> Iterator[tuple[int, object | None, str]]:
    """(line number, parsed object or None, error) for each non-blank line."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                yield number, orjson.loads(raw), ""
            except orjson.JSONDecodeError as err:
                yield number, None, f"invalid JSON: {err}"


def load_openai_moderation(path: Path, name: str = "openai-moderation-dev") -> LabelSet:
    out = LabelSet(name, "openai_moderation", [path], _sha256([path]), [])
    for line, row, error in _jsonl(path):
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
            out.quarantined.append(Quarantined(source=str(path), line=line,
                                               reason=error or "no string field 'prompt'"))
            continue
        bad = [k for k in MODERATION_KEYS if k in row and row[k] not in (0, 1)]
        if bad:
            out.quarantined.append(Quarantined(source=str(path), line=line,
                                               reason=f"labels {', '.join(sorted(bad))} are not 0/1"))
            continue
        labels: dict[str, bool] = {}
        for category, keys in MODERATION_CATEGORIES.items():
            if any(row.get(k) == 1 for k in keys):
                labels[category] = True
            elif row.get(keys[0]) == 0:
                labels[category] = False
            else:
                out.unknown[category] += 1
        out.items.append(LabelledItem(f"{path.name}:{line}", "", row["prompt"], labels))
    return out


def _xstest_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    folder = path / "model_completions" if (path / "model_completions").is_dir() else path
    files = sorted(folder.glob(f"{XSTEST_PREFIX}*.csv"))
    if not files:
        raise FileNotFoundError(f"{path}: no {XSTEST_PREFIX}*.csv files")
    return files


def load_xstest(path: Path, name: str = "xstest-v2-completions") -> LabelSet:
    files = _xstest_files(path)
    out = LabelSet(name, "xstest", files, _sha256(files), [])
    for file in files:
        model = file.stem.removeprefix(XSTEST_PREFIX)
        with file.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in XSTEST_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{file}: missing columns {', '.join(missing)}")
            start = reader.line_num + 1
            for row in reader:
                line, start = start, reader.line_num + 1
                refusal = XSTEST_LABELS.get(row["final_label"])
                if refusal is None:
                    out.quarantined.append(Quarantined(
                        source=str(file), line=line, reason=f"final_label {row['final_label']!r} is not one "
                        f"of {', '.join(XSTEST_LABELS)}"))
                    continue
                safe = not row["type"].startswith("contrast_")
                out.items.append(LabelledItem(
                    f"{model}:{row['id']}", row["prompt"], row["completion"],
                    {"refusal": refusal, "over_refusal": refusal and safe},
                    {"model": model, "type": row["type"], "prompt_safe": str(safe)}))
    return out


def load_generic(path: Path, name: str | None = None) -> LabelSet:
    out = LabelSet(name or path.stem, "generic", [path], _sha256([path]), [])
    for line, row, error in _jsonl(path):
        reason = error
        if not reason and not (isinstance(row, dict) and isinstance(row.get("response"), str)
                               and isinstance(row.get("prompt", ""), str)
                               and isinstance(row.get("labels"), dict)):
            reason = "need string 'response', optional string 'prompt' and object 'labels'"
        if reason or not isinstance(row, dict):
            out.quarantined.append(Quarantined(source=str(path), line=line, reason=reason))
            continue
        labels = {}
        for category, value in row["labels"].items():
            if value is None:
                out.unknown[category] += 1
            elif isinstance(value, bool) or value in (0, 1):
                labels[category] = bool(value)
            else:
                reason = f"label {category!r} is {value!r}, not true/false/null"
        if reason:
            out.quarantined.append(Quarantined(source=str(path), line=line, reason=reason))
            continue
        out.items.append(LabelledItem(str(row.get("id", f"{path.name}:{line}")), row.get("prompt", ""),
                                      row["response"], labels))
    return out


def detect_kind(path: Path) -> str:
    """``openai_moderation``, ``xstest`` or ``generic``, from names and the first record."""
    if path.is_dir():
        if (path / "samples-dev.jsonl").is_file():
            return "openai_moderation"
        _xstest_files(path)  # raises when there is none
        return "xstest"
    if not path.is_file():
        raise FileNotFoundError(f"label set {path} does not exist")
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), [])
        if all(c in header for c in XSTEST_COLUMNS):
            return "xstest"
        raise ValueError(f"{path}: a CSV label set needs the XSTest columns {', '.join(XSTEST_COLUMNS)}")
    for _, row, _ in _jsonl(path):
        if isinstance(row, dict) and "labels" in row and "response" in row:
            return "generic"
        if isinstance(row, dict) and "prompt" in row and MODERATION_KEYS & row.keys():
            return "openai_moderation"
        break
    raise ValueError(f"{path}: not a known label-set format (OpenAI moderation JSONL, XSTest CSV, "
                     "or JSONL with 'response' and 'labels')")


def load_label_set(path: Path) -> LabelSet:
    kind = detect_kind(path)
    if kind == "openai_moderation":
        return load_openai_moderation(path / "samples-dev.jsonl" if path.is_dir() else path)
    if kind == "xstest":
        return load_xstest(path)
    return load_generic(path)
