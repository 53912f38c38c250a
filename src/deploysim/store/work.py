"""Run store tables of the simulation's work: prefixes, completions and the response cache.

Completions are upserted so that an ``ok`` row is final; the simulation's work list is the
set of (prefix, sample) pairs without one, streamed a page at a time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from deploysim.records import Completion, Prefix, RequestSettings, utc_now
from deploysim.store import prefix_blocks
from deploysim.store.base import StoreBase, _where


class WorkTables(StoreBase):
    # -- prefixes --------------------------------------------------------------------------
    def put_prefixes(self, prefixes: Iterable[Prefix]) -> int:
        """Insert prefixes (existing ids are left untouched); ``seq`` keeps sampling order. Long
        histories go to shared message blocks (:mod:`deploysim.store.prefix_blocks`)."""
        with self._lock:
            start = int(self._query("SELECT COALESCE(MAX(seq), -1) + 1 FROM prefixes")[0][0])
            rows: list[tuple[object, ...]] = []
            blocks: dict[str, bytes] = {}
            for i, p in enumerate(prefixes):
                record, refs, block_rows = prefix_blocks.encode(p)
                blocks.update(block_rows)
                rows.append((p.id, p.conversation_id, p.turn_index, p.context.product_context,
                             p.context.language, p.stratum, p.context.deidentified, start + i, p.pool,
                             record, refs))
            self._put_blocks(blocks)
            return self._write("INSERT OR IGNORE INTO prefixes (id, conversation_id, turn_index, "
                               "product_context, language, stratum, deidentified, seq, pool, record, blocks) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def replace_prefixes(self, prefixes: Iterable[Prefix]) -> int:
        """Rewrite prefixes in place (same id, same seq): used by de-identification, which
        changes the text but not the identity of a sampled prefix."""
        rows: list[tuple[object, ...]] = []
        blocks: dict[str, bytes] = {}
        for p in prefixes:
            record, refs, block_rows = prefix_blocks.encode(p)
            blocks.update(block_rows)
            rows.append((p.context.deidentified, record, refs, p.id))
        self._put_blocks(blocks)
        return self._write("UPDATE prefixes SET deidentified = ?, record = ?, blocks = ? WHERE id = ?", rows)

    def _put_blocks(self, blocks: dict[str, bytes]) -> None:
        if blocks:
            self._write("INSERT OR IGNORE INTO message_blocks (id, messages) VALUES (?, ?)",
                        list(blocks.items()))

    def _blocks(self, ids: list[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            marks = ",".join("?" * len(part))
            out.update(self._query(f"SELECT id, messages FROM message_blocks WHERE id IN ({marks})", part))
        return out

    def decode_prefixes(self, rows: Sequence[tuple[str, str | None]]) -> list[Prefix]:
        """Prefixes of stored (record, blocks) rows."""
        return prefix_blocks.decode_rows(rows, self._blocks)

    def iter_prefixes(self, *, deidentified: str | None = None, pool: str | None = None,
                      batch: int = 500) -> Iterator[Prefix]:
        where, params = _where(deidentified=deidentified, pool=pool)
        last = -1
        conj = " AND " if where else " WHERE "
        while True:
            rows = self._query(f"SELECT rowid, record, blocks FROM prefixes{where}{conj}rowid > ? "
                               "ORDER BY rowid LIMIT ?", (*params, last, batch))
            if not rows:
                return
            last = rows[-1][0]
            yield from self.decode_prefixes([(r[1], r[2]) for r in rows])

    def get_prefix(self, prefix_id: str) -> Prefix | None:
        rows = self._query("SELECT record, blocks FROM prefixes WHERE id = ?", (prefix_id,))
        return self.decode_prefixes(rows)[0] if rows else None

    def deidentified_counts(self) -> dict[str, int]:
        """Number of stored prefixes per de-identification status (raw / deidentified / synthetic)."""
        rows = self._query("SELECT deidentified, COUNT(*) FROM prefixes GROUP BY deidentified")
        return {str(r[0]): int(r[1]) for r in rows}

    def count_prefixes(self, *, pool: str | None = None) -> int:
        where, params = _where(pool=pool)
        return int(self._query(f"SELECT COUNT(*) FROM prefixes{where}", params)[0][0])

    # -- completions -----------------------------------------------------------------------
    def put_completions(self, completions: Iterable[Completion]) -> int:
        """Upsert; an ``ok`` row is final and never overwritten, an ``error`` row may be
        replaced by a later attempt."""
        now = utc_now()
        rows = [(c.id, c.prefix_id, c.arm, c.model, c.generator_hash, c.sample_index, c.status,
                 c.model_dump_json(), now) for c in completions]
        return self._write(
            "INSERT INTO completions (id, prefix_id, arm, model, generator_hash, sample_index, "
            "status, record, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET status = excluded.status, record = excluded.record, "
            "updated_at = excluded.updated_at WHERE completions.status != 'ok'", rows)

    def iter_completions(self, *, arm: str | None = None, status: str | None = None,
                         generator_hash: str | None = None) -> Iterator[Completion]:
        where, params = _where(arm=arm, status=status, generator_hash=generator_hash)
        yield from self._iter_records(
            Completion, f"SELECT rowid, record FROM completions{where}", params)

    def completions_for_prefix(self, prefix_id: str) -> list[Completion]:
        rows = self._query("SELECT record FROM completions WHERE prefix_id = ? ORDER BY arm, sample_index",
                           (prefix_id,))
        return [Completion.model_validate_json(r[0]) for r in rows]

    def replace_completions(self, completions: Iterable[Completion]) -> int:
        """Rewrite completions in place (same id, any status): used by de-identification of a
        run, which changes their text but not their identity."""
        now = utc_now()
        rows = [(c.status, c.model_dump_json(), now, c.id) for c in completions]
        return self._write("UPDATE completions SET status = ?, record = ?, updated_at = ? WHERE id = ?", rows)

    def get_completion(self, completion_id: str) -> Completion | None:
        rows = self._query("SELECT record FROM completions WHERE id = ?", (completion_id,))
        return Completion.model_validate_json(rows[0][0]) if rows else None

    def completion_arms(self) -> list[str]:
        """Arms that hold at least one completion."""
        return [r[0] for r in self._query("SELECT DISTINCT arm FROM completions ORDER BY arm")]

    def count_completions(self, *, arm: str | None = None, status: str | None = None,
                          generator_hash: str | None = None) -> int:
        where, params = _where(arm=arm, status=status, generator_hash=generator_hash)
        return int(self._query(f"SELECT COUNT(*) FROM completions{where}", params)[0][0])

    def completion_keys_done(self, arm: str, generator_hash: str) -> set[tuple[str, int]]:
        """(prefix_id, sample_index) pairs that already have an ``ok`` completion."""
        rows = self._query("SELECT prefix_id, sample_index FROM completions WHERE arm = ? AND "
                           "generator_hash = ? AND status = 'ok'", (arm, generator_hash))
        return {(r[0], int(r[1])) for r in rows}

    def iter_pending_prefixes(self, arm: str, generator_hash: str, samples: int, *, pool: str,
                              batch: int = 1000) -> Iterator[tuple[Prefix, int]]:
        """Yield (prefix, sample_index) for every pair without an ``ok`` completion, streaming
        in sampling order one page of prefixes at a time: the work list of a (resumed)
        simulation. Memory is bounded by the page size, not the run. Only prefixes of the
        arm's pool are work for that arm."""
        last = -1
        while True:
            rows = self._query("SELECT seq, id, record, blocks FROM prefixes WHERE pool = ? AND seq > ? "
                               "ORDER BY seq LIMIT ?", (pool, last, batch))
            if not rows:
                return
            last = rows[-1][0]
            ids = [r[1] for r in rows]
            marks = ",".join("?" * len(ids))
            done = {(r[0], int(r[1])) for r in self._query(
                f"SELECT prefix_id, sample_index FROM completions WHERE arm = ? AND generator_hash = ? "
                f"AND status = 'ok' AND prefix_id IN ({marks})", (arm, generator_hash, *ids))}
            for _, pid, text, refs in rows:
                missing = [i for i in range(samples) if (pid, i) not in done]
                if missing:
                    prefix = self.decode_prefixes([(text, refs)])[0]
                    for i in missing:
                        yield prefix, i

    def completion_spend(self, arm: str | None = None, generator_hash: str | None = None,
                         ) -> tuple[int, int, float]:
        """(input tokens, output tokens, cost in USD) over stored completions: what earlier
        invocations already spent, so a budget holds across resumes."""
        where, params = _where(arm=arm, generator_hash=generator_hash)
        row = self._query(
            "SELECT COALESCE(SUM(json_extract(record, '$.usage.input_tokens')), 0), "
            "COALESCE(SUM(json_extract(record, '$.usage.output_tokens')), 0), "
            f"COALESCE(SUM(json_extract(record, '$.cost_usd')), 0.0) FROM completions{where}", params)[0]
        return int(row[0]), int(row[1]), float(row[2])

    # -- request settings (what was sent, stored once per distinct value) --------------------
    def put_request_settings(self, settings: Iterable[RequestSettings]) -> int:
        now = utc_now()
        return self._write("INSERT OR IGNORE INTO request_settings (id, record, created_at) VALUES (?, ?, ?)",
                           [(st.id, st.model_dump_json(), now) for st in settings])

    def get_request_settings(self, ids: Sequence[str]) -> dict[str, RequestSettings]:
        out: dict[str, RequestSettings] = {}
        wanted = list(dict.fromkeys(ids))
        for i in range(0, len(wanted), 500):
            part = wanted[i:i + 500]
            marks = ",".join("?" * len(part))
            for (text,) in self._query(f"SELECT record FROM request_settings WHERE id IN ({marks})", part):
                st = RequestSettings.model_validate_json(text)
                out[st.id] = st
        return out

    # -- response cache (engine) -------------------------------------------------------------
    def get_cached_response(self, key: str) -> str | None:
        """The cached generation JSON for a request key, or None."""
        rows = self._query("SELECT record FROM response_cache WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def get_cached_responses(self, keys: Sequence[str]) -> dict[str, str]:
        """Cached generation JSON for many keys in one query (missing keys are absent)."""
        out: dict[str, str] = {}
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            marks = ",".join("?" * len(part))
            out.update(self._query(f"SELECT key, record FROM response_cache WHERE key IN ({marks})", part))
        return out

    def put_cached_responses(self, rows: Iterable[tuple[str, str, str]]) -> int:
        """Insert (key, spec_hash, generation JSON) rows; an existing key is kept."""
        now = utc_now()
        return self._write("INSERT OR IGNORE INTO response_cache (key, spec_hash, record, created_at) "
                           "VALUES (?, ?, ?, ?)", [(k, h, r, now) for k, h, r in rows])

    def count_cached_responses(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM response_cache")[0][0])
