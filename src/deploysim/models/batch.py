"""OpenAI Batch API client: JSONL upload, create, poll, download, map results back.

Each request line carries a ``custom_id`` chosen by the caller (simulation uses
``prefix_id:sample_index``), so results map back without any state but the batch id. A
finished batch may be partial: lines in the error file, and lines missing from both files
(an expired or cancelled batch), each come back as a :class:`ProviderError` for their id, so
nothing is silently dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from deploysim.models.base import Generation, ProviderError
from deploysim.models.wire import decode_json, parse_chat_response, status_error

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
#: the API accepts at most this many requests per batch
MAX_REQUESTS_PER_BATCH = 50_000


@dataclass(frozen=True)
class BatchLine:
    custom_id: str
    body: dict[str, Any]


class OpenAIBatchClient:
    def __init__(self, base_url: str, *, api_key: str | None = None, poll_interval_s: float = 30.0,
                 completion_window: str = "24h", max_wait_s: float = 26 * 3600,
                 endpoint: str = "/v1/chat/completions") -> None:
        self.base_url = base_url.rstrip("/")
        self.poll_interval_s = poll_interval_s
        self.completion_window = completion_window
        self.max_wait_s = max_wait_s
        self.endpoint = endpoint
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers,
                                                  timeout=aiohttp.ClientTimeout(total=600))
        return self._session

    async def _call(self, method: str, path: str, **kw: Any) -> bytes:
        async with self._client().request(method, f"{self.base_url}{path}", **kw) as resp:
            raw = await resp.read()
            if resp.status >= 300:
                raise status_error(resp.status, raw, resp.headers)
            return raw

    async def submit(self, lines: Sequence[BatchLine]) -> str:
        """Upload the JSONL and create the batch; returns the batch id."""
        if not lines:
            raise ValueError("a batch needs at least one request")
        if len(lines) > MAX_REQUESTS_PER_BATCH:
            raise ValueError(f"{len(lines)} requests exceed the {MAX_REQUESTS_PER_BATCH} per batch limit")
        jsonl = b"".join(orjson.dumps({"custom_id": x.custom_id, "method": "POST", "url": self.endpoint,
                                       "body": x.body}) + b"\n" for x in lines)
        form = aiohttp.FormData()
        form.add_field("purpose", "batch")
        form.add_field("file", jsonl, filename="requests.jsonl", content_type="application/jsonl")
        file_obj = decode_json(await self._call("POST", "/files", data=form))
        batch = decode_json(await self._call("POST", "/batches", json={
            "input_file_id": file_obj["id"], "endpoint": self.endpoint,
            "completion_window": self.completion_window}))
        return str(batch["id"])

    async def wait(self, batch_id: str) -> dict[str, Any]:
        """Poll until the batch is in a terminal state; returns the batch object."""
        deadline = time.monotonic() + self.max_wait_s
        while True:
            batch = decode_json(await self._call("GET", f"/batches/{batch_id}"))
            if batch.get("status") in TERMINAL:
                return dict(batch)
            if time.monotonic() > deadline:
                raise ProviderError(f"batch {batch_id} still {batch.get('status')} after "
                                    f"{self.max_wait_s:g}s", retryable=False)
            await asyncio.sleep(self.poll_interval_s)

    async def results(self, batch: dict[str, Any], custom_ids: Sequence[str] | None = None,
                      ) -> dict[str, Generation | ProviderError]:
        """Every result of a finished batch by custom id; ids in ``custom_ids`` that are in
        neither file come back as errors naming the batch status."""
        out: dict[str, Generation | ProviderError] = {}
        for key in ("output_file_id", "error_file_id"):
            fid = batch.get(key)
            if not fid:
                continue
            for line in (await self._call("GET", f"/files/{fid}/content")).splitlines():
                if line.strip():
                    cid, result = parse_result_line(orjson.loads(line))
                    out[cid] = result
        for cid in custom_ids or ():
            if cid not in out:
                out[cid] = ProviderError(f"no result in batch {batch.get('id')} (status "
                                         f"{batch.get('status')})", retryable=True)
        return out

    async def run(self, lines: Sequence[BatchLine]) -> dict[str, Generation | ProviderError]:
        batch = await self.wait(await self.submit(lines))
        return await self.results(batch, [x.custom_id for x in lines])

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def parse_result_line(row: dict[str, Any]) -> tuple[str, Generation | ProviderError]:
    cid = str(row.get("custom_id"))
    if row.get("error"):
        err = row["error"]
        return cid, ProviderError(f"batch error {err.get('code')}: {err.get('message')}", retryable=True)
    resp = row.get("response") or {}
    status = int(resp.get("status_code") or 0)
    body = resp.get("body")
    if status >= 300 or status == 0:
        return cid, status_error(status, orjson.dumps(body), {})
    try:
        return cid, parse_chat_response(body)
    except ProviderError as err:
        return cid, err
