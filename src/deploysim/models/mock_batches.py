"""A fake of the OpenAI Files and Batches endpoints, served by the mock server.

``POST /v1/files`` (multipart upload), ``GET /v1/files/{id}/content``, ``POST /v1/batches``,
``GET /v1/batches/{id}``. A batch answers every line with the mock's deterministic chat
completion after ``batch_delay_s``; ``batch_fail_every`` puts every k-th line in the error file
and ``batch_complete_share < 1`` leaves the rest unprocessed with status ``expired``, so the
client's handling of partial failures can be tested.
"""

from __future__ import annotations

import asyncio
import time
from email.message import Message
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any

import orjson

from deploysim.models.mock_http import Request, Response

if TYPE_CHECKING:
    from deploysim.models.mock_server import MockServer


def _error(status: int, message: str) -> Response:
    return Response(status, orjson.dumps({"error": {"message": message, "type": "invalid_request_error"}}))


class BatchStore:
    def __init__(self, server: MockServer) -> None:
        self._server = server
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}

    def handle(self, req: Request) -> Response:
        parts = [p for p in req.path.split("/") if p and p != "v1"]
        if parts == ["files"] and req.method == "POST":
            return self._upload(req)
        if len(parts) == 3 and parts[0] == "files" and parts[2] == "content":
            data = self.files.get(parts[1])
            return Response(200, data, content_type="application/jsonl") if data is not None \
                else _error(404, f"no file {parts[1]}")
        if parts == ["batches"] and req.method == "POST":
            return self._create(orjson.loads(req.body))
        if len(parts) == 2 and parts[0] == "batches":
            batch = self.batches.get(parts[1])
            return Response(200, orjson.dumps(batch)) if batch else _error(404, f"no batch {parts[1]}")
        return _error(404, f"no route {req.method} {req.path}")

    def _upload(self, req: Request) -> Response:
        ctype = req.headers.get("content-type", "")
        msg = BytesParser().parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + req.body)
        fields: dict[str, Any] = {}
        parts: list[Message] = msg.get_payload() if msg.is_multipart() else []  # type: ignore[assignment]
        for part in parts:
            name = part.get_param("name", header="content-disposition")
            fields[str(name)] = part.get_payload(decode=True)
        if "file" not in fields:
            return _error(400, "multipart field 'file' is required")
        fid = f"file-{len(self.files) + 1}"
        self.files[fid] = fields["file"]
        purpose = (fields.get("purpose") or b"batch").decode()
        return Response(200, orjson.dumps({"id": fid, "object": "file", "bytes": len(fields["file"]),
                                           "purpose": purpose, "filename": "input.jsonl"}))

    def _create(self, body: dict[str, Any]) -> Response:
        fid = body.get("input_file_id")
        if fid not in self.files:
            return _error(400, f"input_file_id {fid!r} not found")
        bid = f"batch_{len(self.batches) + 1}"
        lines = [orjson.loads(x) for x in self.files[fid].splitlines() if x.strip()]
        batch = {"id": bid, "object": "batch", "endpoint": body.get("endpoint"), "status": "in_progress",
                 "input_file_id": fid, "output_file_id": None, "error_file_id": None,
                 "created_at": int(time.time()), "request_counts": {"total": len(lines), "completed": 0,
                                                                  "failed": 0}}
        self.batches[bid] = batch
        asyncio.get_running_loop().call_later(self._server.config.batch_delay_s, self._finish, bid, lines)
        return Response(200, orjson.dumps(batch))

    def _finish(self, bid: str, lines: list[dict[str, Any]]) -> None:
        from deploysim.models.mock_server import synthesize

        cfg = self._server.config
        batch = self.batches[bid]
        done = round(len(lines) * cfg.batch_complete_share)
        out, err = [], []
        for i, line in enumerate(lines[:done]):
            cid = line.get("custom_id")
            if cfg.batch_fail_every and (i + 1) % cfg.batch_fail_every == 0:
                err.append({"id": f"req_{i}", "custom_id": cid, "error": None, "response": {
                    "status_code": 500, "request_id": f"r{i}",
                    "body": {"error": {"message": "The server had an error", "type": "server_error"}}}})
            else:
                out.append({"id": f"req_{i}", "custom_id": cid, "error": None, "response": {
                    "status_code": 200, "request_id": f"r{i}", "body": synthesize(line.get("body", {}))}})
        for rows, key in ((out, "output_file_id"), (err, "error_file_id")):
            if rows:
                fid = f"file-{len(self.files) + 1}"
                self.files[fid] = b"\n".join(orjson.dumps(r) for r in rows) + b"\n"
                batch[key] = fid
        batch["status"] = "completed" if done == len(lines) else "expired"
        batch["request_counts"] = {"total": len(lines), "completed": len(out), "failed": len(err)}
