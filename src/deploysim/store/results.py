"""Run store tables of measurements: judgments, estimates, comparisons, grader validations."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import orjson

from deploysim.records import Comparison, Estimate, Judgment, Prefix, utc_now
from deploysim.store import prefix_blocks
from deploysim.store.base import StoreBase, _dumps, _where


class JudgmentCount(NamedTuple):
    """Judgments of one (category, arm, grader): ok verdicts, positives among them, errors,
    abstentions."""

    category: str
    arm: str
    grader_hash: str
    ok: int
    positive: int
    errors: int
    abstained: int


class ResultTables(StoreBase):
    _blocks: Any  # provided by WorkTables (prefix history blocks)

    # -- graders (full identity, stored once per grader hash) --------------------------------
    def put_graders(self, graders: Iterable[tuple[str, str, str, str, dict[str, Any]]]) -> int:
        """(grader_hash, category, grader_id, kind, identity) rows; an existing hash is kept."""
        now = utc_now()
        return self._write("INSERT OR IGNORE INTO graders (grader_hash, category, grader_id, kind, identity, "
                           "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                           [(h, c, g, k, _dumps(i), now) for h, c, g, k, i in graders])

    def graders(self) -> dict[str, dict[str, Any]]:
        """grader_hash -> {category, grader_id, kind, identity}."""
        rows = self._query("SELECT grader_hash, category, grader_id, kind, identity FROM graders "
                           "ORDER BY category")
        return {r[0]: {"category": r[1], "grader_id": r[2], "kind": r[3], "identity": orjson.loads(r[4])}
                for r in rows}

    # -- judgments -------------------------------------------------------------------------
    def put_judgments(self, judgments: Iterable[Judgment]) -> int:
        now = utc_now()
        rows = [(j.id, j.completion_id, j.prefix_id, j.arm, j.category, j.grader_hash, j.status,
                 None if j.label is None else int(j.label), j.model_dump_json(), now)
                for j in judgments]
        return self._write(
            "INSERT INTO judgments (id, completion_id, prefix_id, arm, category, grader_hash, "
            "status, label, record, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET status = excluded.status, label = excluded.label, "
            "record = excluded.record, updated_at = excluded.updated_at "
            "WHERE judgments.status = 'error'", rows)

    def iter_judgments(self, *, category: str | None = None, arm: str | None = None,
                       grader_hash: str | None = None, status: str | None = None) -> Iterator[Judgment]:
        where, params = _where(category=category, arm=arm, grader_hash=grader_hash, status=status)
        yield from self._iter_records(Judgment, f"SELECT rowid, record FROM judgments{where}", params)

    def judged_completion_ids(self, category: str, grader_hash: str) -> set[str]:
        rows = self._query("SELECT completion_id FROM judgments WHERE category = ? AND "
                           "grader_hash = ? AND status = 'ok'", (category, grader_hash))
        return {r[0] for r in rows}

    def judgment_status_for(self, completion_ids: Sequence[str]) -> dict[tuple[str, str, str], str]:
        """(completion_id, category, grader_hash) -> status for the judgments of these completions
        (one page of the grade stage's resume check; pass at most a few thousand ids)."""
        if not completion_ids:
            return {}
        marks = ",".join("?" * len(completion_ids))
        rows = self._query(f"SELECT completion_id, category, grader_hash, status FROM judgments "
                           f"WHERE completion_id IN ({marks})", tuple(completion_ids))
        return {(r[0], r[1], r[2]): r[3] for r in rows}

    def get_prefixes(self, prefix_ids: Sequence[str]) -> dict[str, Prefix]:
        """Prefixes by id (missing ids are absent from the result)."""
        ids = list(dict.fromkeys(prefix_ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._query(f"SELECT record, blocks FROM prefixes WHERE id IN ({marks})", tuple(ids))
        return {p.id: p for p in prefix_blocks.decode_rows(rows, self._blocks)}

    def judgment_counts(self, generators: Mapping[str, str] | None = None) -> list[JudgmentCount]:
        """Counts of every (category, arm, grader hash) group. ``generators`` (arm -> generator
        hash) counts, for those arms, only judgments of completions by that generator: an arm
        whose model or environment changed never mixes old and new completions."""
        stale = self._stale_generators(generators or {})
        if not stale:
            rows = self._query(
                "SELECT category, arm, grader_hash, SUM(status = 'ok'), SUM(status = 'ok' AND label = 1), "
                "SUM(status = 'error'), SUM(status = 'abstained') FROM judgments "
                "GROUP BY category, arm, grader_hash ORDER BY category, arm, grader_hash")
        else:
            cases = " OR ".join("(j.arm = ? AND c.generator_hash != ?)" for _ in stale)
            rows = self._query(
                "SELECT j.category, j.arm, j.grader_hash, SUM(j.status = 'ok'), "
                "SUM(j.status = 'ok' AND j.label = 1), SUM(j.status = 'error'), SUM(j.status = 'abstained') "
                f"FROM judgments j JOIN completions c ON c.id = j.completion_id WHERE NOT ({cases}) "
                "GROUP BY j.category, j.arm, j.grader_hash ORDER BY j.category, j.arm, j.grader_hash",
                [x for arm in stale for x in (arm, generators[arm])])  # type: ignore[index]
        return [JudgmentCount(r[0], r[1], r[2], int(r[3]), int(r[4]), int(r[5]), int(r[6])) for r in rows]

    def _stale_generators(self, generators: Mapping[str, str]) -> list[str]:
        """Arms of ``generators`` that also hold completions by another generator."""
        if not generators:
            return []
        rows = self._query("SELECT DISTINCT arm, generator_hash FROM completions")
        return sorted({arm for arm, h in rows if arm in generators and h != generators[arm]})

    def abstention_reasons(self, category: str, arm: str, grader_hash: str) -> dict[str, int]:
        """Why a grader abstained in one group: reason -> count."""
        rows = self._query(
            "SELECT COALESCE(json_extract(record, '$.error'), 'unspecified'), COUNT(*) FROM judgments "
            "WHERE category = ? AND arm = ? AND grader_hash = ? AND status = 'abstained' "
            "GROUP BY 1 ORDER BY 1",
            (category, arm, grader_hash))
        return {str(r[0]): int(r[1]) for r in rows}

    def prefix_label_counts(self, category: str, arm: str, grader_hash: str,
                            generator_hash: str | None = None) -> list[tuple[str, int, int]]:
        """(prefix_id, positives, graded items) per prefix of one (category, arm) group: the
        clusters of a design-based rate (several samples per prefix, design weights)."""
        if generator_hash is None:
            rows = self._query(
                "SELECT prefix_id, SUM(label = 1), COUNT(*) FROM judgments WHERE category = ? AND arm = ? "
                "AND grader_hash = ? AND status = 'ok' GROUP BY prefix_id ORDER BY prefix_id",
                (category, arm, grader_hash))
        else:
            rows = self._query(
                "SELECT j.prefix_id, SUM(j.label = 1), COUNT(*) FROM judgments j JOIN completions c "
                "ON c.id = j.completion_id WHERE j.category = ? AND j.arm = ? AND j.grader_hash = ? "
                "AND j.status = 'ok' AND c.generator_hash = ? GROUP BY j.prefix_id ORDER BY j.prefix_id",
                (category, arm, grader_hash, generator_hash))
        return [(str(r[0]), int(r[1]), int(r[2])) for r in rows]

    def prefix_design_rows(self, pool: str = "production") -> list[tuple[str, str | None, int | None]]:
        """(prefix_id, stratum, usable turns of its conversation) of a pool's prefixes."""
        rows = self._query("SELECT id, stratum, json_extract(record, '$.usable_turns') FROM prefixes "
                           "WHERE pool = ? ORDER BY seq", (pool,))
        return [(str(r[0]), r[1], None if r[2] is None else int(r[2])) for r in rows]

    def max_samples(self, arm: str) -> int:
        """The most samples per prefix an arm's completions hold (1 when it has none)."""
        row = self._query("SELECT MAX(sample_index) FROM completions WHERE arm = ?", (arm,))
        return 1 if not row or row[0][0] is None else int(row[0][0]) + 1

    def paired_labels(self, category: str, grader_hash: str, arm_a: str,
                      arm_b: str) -> list[tuple[str, bool, bool]]:
        """(prefix_id, label_a, label_b) on prefixes graded ok in both arms (sample 0), for the
        paired McNemar test."""
        rows = self._query(
            "SELECT a.prefix_id, a.label, b.label FROM judgments a JOIN judgments b "
            "ON a.prefix_id = b.prefix_id AND a.category = b.category AND a.grader_hash = b.grader_hash "
            "JOIN completions ca ON ca.id = a.completion_id JOIN completions cb ON cb.id = b.completion_id "
            "WHERE a.category = ? AND a.grader_hash = ? AND a.arm = ? AND b.arm = ? "
            "AND a.status = 'ok' AND b.status = 'ok' AND ca.sample_index = 0 AND cb.sample_index = 0 "
            "ORDER BY a.prefix_id", (category, grader_hash, arm_a, arm_b))
        return [(r[0], bool(r[1]), bool(r[2])) for r in rows]

    def rank_prefixes_by_judgments(self, arm: str, limit: int, *, order: str = "flags",
                                   categories: Sequence[str] | None = None,
                                   pool: str = "production") -> list[tuple[str, int, float | None]]:
        """(prefix_id, categories flagged, max score) of the ``limit`` highest-risk prefixes of a
        pool by their ``ok`` judgments in ``arm`` (the challenging-prompts top-k selection).

        ``order="flags"``: prefixes with at least one flagged category, by number of distinct
        categories flagged, then max score (no score last), then prefix id. ``order="score"``:
        prefixes with a score, by max score, then flags, then prefix id. The ranking runs in
        SQLite with a bounded sort, so memory does not grow with the run."""
        if order not in ("flags", "score"):
            raise ValueError(f"unknown ranking order {order!r} (flags, score)")
        cats = list(categories or ())
        cat_sql = f" AND j.category IN ({','.join('?' * len(cats))})" if cats else ""
        having, order_sql = (("flags > 0", "flags DESC, top DESC NULLS LAST, j.prefix_id") if order == "flags"
                             else ("top IS NOT NULL", "top DESC, flags DESC, j.prefix_id"))
        rows = self._query(
            "SELECT j.prefix_id, COUNT(DISTINCT CASE WHEN j.label = 1 THEN j.category END) AS flags, "
            "MAX(json_extract(j.record, '$.score')) AS top FROM judgments j "
            "JOIN prefixes p ON p.id = j.prefix_id "
            f"WHERE j.arm = ? AND j.status = 'ok' AND p.pool = ?{cat_sql} GROUP BY j.prefix_id "
            f"HAVING {having} ORDER BY {order_sql} LIMIT ?", (arm, pool, *cats, limit))
        return [(r[0], int(r[1]), None if r[2] is None else float(r[2])) for r in rows]

    # -- estimates, comparisons, validations -------------------------------------------------
    def put_estimates(self, estimates: Iterable[Estimate]) -> int:
        now = utc_now()
        return self._write(
            "INSERT OR REPLACE INTO estimates (id, category, arm, grader_hash, record, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(e.id, e.category, e.arm, e.grader_hash, e.model_dump_json(), now) for e in estimates])

    def estimates(self) -> list[Estimate]:
        return [Estimate.model_validate_json(r[0]) for r in
                self._query("SELECT record FROM estimates ORDER BY category, arm")]

    def put_comparisons(self, comparisons: Iterable[Comparison]) -> int:
        now = utc_now()
        return self._write(
            "INSERT OR REPLACE INTO comparisons (id, category, arm_a, arm_b, grader_hash, record, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(c.id, c.category, c.arm_a, c.arm_b, c.grader_hash, c.model_dump_json(), now)
             for c in comparisons])

    def comparisons(self) -> list[Comparison]:
        return [Comparison.model_validate_json(r[0]) for r in
                self._query("SELECT record FROM comparisons ORDER BY category, arm_a, arm_b")]

    def put_grader_validation(self, grader_hash: str, category: str, dataset: str,
                              record: dict[str, Any]) -> None:
        from deploysim.hashing import content_hash

        vid = content_hash([grader_hash, category, dataset])
        self._write("INSERT OR REPLACE INTO grader_validations (id, grader_hash, category, dataset, "
                    "record, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [(vid, grader_hash, category, dataset, _dumps(record), utc_now())])

    def grader_validations(self, grader_hash: str | None = None) -> list[dict[str, Any]]:
        where, params = _where(grader_hash=grader_hash)
        rows = self._query(f"SELECT grader_hash, category, dataset, record FROM grader_validations{where} "
                           "ORDER BY category, dataset", params)
        return [{"grader_hash": r[0], "category": r[1], "dataset": r[2], **orjson.loads(r[3])}
                for r in rows]
