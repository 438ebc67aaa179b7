"""A local OpenAI Batch API: files and batches, answering each request line by forwarding its body to
an upstream chat-completions URL (`upstream`, e.g. the deterministic testing.local_servers.chat).

    POST /v1/files (multipart: purpose=batch, file)   GET /v1/files/{id}   GET /v1/files/{id}/content
    POST /v1/batches   GET /v1/batches/{id}   POST /v1/batches/{id}/cancel

A batch goes validating -> in_progress -> finalizing -> completed, as OpenAI's does, in a thread of
its own; a malformed input file ends it `failed` with its errors listed (line numbers); `expire_after=N`
answers only N lines and ends it `expired`, the rest in the error file as `batch_expired`;
`error_every=K` answers every K-th line with a 500 in the error file (partial output); a cancelled
batch stops, the lines not yet run in the error file as `batch_cancelled`. `step_s` waits at each
state change, so a poller can see every state. Auth: `Authorization: Bearer <api_key>`.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from testing.local_servers.common import LocalServer, Request, Response

ENDPOINT = "/v1/chat/completions"
_FILE = re.compile(r"^/v1/files/([\w-]+)(/content)?$")
_BATCH = re.compile(r"^/v1/batches/([\w-]+)(/cancel)?$")


def _error(status: int, message: str, code: str | None = None) -> Response:
    return Response(status, {"error": {"message": message, "type": "invalid_request_error", "code": code}})


def _multipart(req: Request) -> dict[str, tuple[str | None, bytes]]:
    """{field: (filename, bytes)} of a multipart/form-data body."""
    head = f"Content-Type: {req.headers.get('content-type', '')}\r\n\r\n".encode()
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + req.body)
    out: dict[str, tuple[str | None, bytes]] = {}
    for part in msg.iter_parts() if msg.is_multipart() else []:
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str):
            out[name] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return out


def _result(custom_id: str, n: int, status: int | None, body: Any, error: dict[str, Any] | None) -> bytes:
    response = None if status is None else {"status_code": status, "request_id": f"req_{n:06d}", "body": body}
    line = {"id": f"batch_req_{n:06d}", "custom_id": custom_id, "response": response, "error": error}
    return json.dumps(line).encode() + b"\n"


def validate_input(
    content: bytes, endpoint: str
) -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]]]:
    """(custom_id, body) of every request line, and the errors that fail the batch (OpenAI's shape)."""
    lines: list[tuple[str, dict[str, Any]]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, raw in enumerate(content.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except ValueError:
            row = None
        if not isinstance(row, dict):
            errors.append(
                {
                    "code": "invalid_json_line",
                    "message": "This line is not parseable as valid JSON.",
                    "line": n,
                }
            )
            continue
        cid, body = row.get("custom_id"), row.get("body")
        if not isinstance(cid, str) or row.get("method") != "POST" or not isinstance(body, dict):
            errors.append(
                {
                    "code": "invalid_request",
                    "message": "custom_id, method POST and body are required.",
                    "line": n,
                }
            )
        elif row.get("url") != endpoint:
            errors.append(
                {"code": "mismatched_endpoint", "message": f"The url must be {endpoint}.", "line": n}
            )
        elif cid in seen:
            errors.append(
                {"code": "duplicate_custom_id", "message": f"custom_id {cid} is not unique.", "line": n}
            )
        else:
            seen.add(cid)
            lines.append((cid, body))
    if not lines and not errors:
        errors.append({"code": "empty_file", "message": "The input file has no requests.", "line": None})
    return lines, errors


class BatchAPIServer(LocalServer):
    name = "batch"

    def __init__(
        self,
        *,
        upstream: str,
        api_key: str = "sk-local-batch",
        expire_after: int | None = None,
        error_every: int = 0,
        step_s: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.upstream, self.api_key = upstream.rstrip("/"), api_key
        self.expire_after, self.error_every, self.step_s = expire_after, error_every, step_s
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.forwarded = 0  # request lines sent upstream

    def authorised(self, req: Request) -> bool:
        return req.headers.get("authorization") == f"Bearer {self.api_key}"

    def unauthorised(self) -> Response:
        return _error(401, "Incorrect API key provided.", "invalid_api_key")

    def extra_stats(self) -> dict[str, Any]:
        return {"files": len(self.files), "batches": len(self.batches), "forwarded": self.forwarded}

    def route(self, req: Request) -> Response:
        if req.path == "/v1/files" and req.method == "POST":
            return self._upload(req)
        if req.path == "/v1/batches" and req.method == "POST":
            return self._create(req)
        found = _FILE.match(req.path)
        if found and req.method == "GET":
            if found.group(1) not in self.files:
                return _error(404, f"No such File object: {found.group(1)}")
            if found.group(2):
                content = self.contents[found.group(1)]
                return Response(200, raw=content, headers={"Content-Type": "application/octet-stream"})
            return Response(200, self.files[found.group(1)])
        found = _BATCH.match(req.path)
        if found and found.group(1) in self.batches:
            batch = self.batches[found.group(1)]
            if found.group(2) and req.method == "POST":
                if batch["status"] in ("validating", "in_progress"):
                    batch.update(status="cancelling", cancelling_at=int(time.time()))
                return Response(200, dict(batch))
            if not found.group(2) and req.method == "GET":
                return Response(200, dict(batch))
        if found:
            return _error(404, f"No such Batch object: {found.group(1)}")
        return _error(404, f"Invalid URL ({req.method} {req.path})")

    def add_file(self, content: bytes, filename: str, purpose: str) -> dict[str, Any]:
        file_id = f"file-{len(self.files) + 1:06d}"
        meta = {
            "id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
            "filename": filename, "purpose": purpose, "status": "processed",
        }  # fmt: skip
        self.files[file_id], self.contents[file_id] = meta, content
        return meta

    def _upload(self, req: Request) -> Response:
        form = _multipart(req)
        purpose = form.get("purpose", (None, b""))[1].decode()
        if "file" not in form or purpose != "batch":
            return _error(400, "A multipart upload with purpose=batch and a file is required.")
        filename, content = form["file"]
        return Response(200, self.add_file(content, filename or "upload.jsonl", purpose))

    def _create(self, req: Request) -> Response:
        body = req.json() or {}
        if body.get("input_file_id") not in self.files:
            return _error(400, f"No such File object: {body.get('input_file_id')}")
        if body.get("endpoint") != ENDPOINT or body.get("completion_window") != "24h":
            return _error(400, f"endpoint must be {ENDPOINT} and completion_window 24h")
        now = int(time.time())
        batch_id = f"batch_{len(self.batches) + 1:06d}"
        batch: dict[str, Any] = {
            "id": batch_id, "object": "batch", "endpoint": ENDPOINT, "errors": None,
            "input_file_id": body["input_file_id"], "completion_window": "24h", "status": "validating",
            "output_file_id": None, "error_file_id": None, "created_at": now, "expires_at": now + 86400,
            "request_counts": {"total": 0, "completed": 0, "failed": 0}, "metadata": body.get("metadata"),
        }  # fmt: skip
        self.batches[batch_id] = batch
        threading.Thread(target=self._process, args=(batch_id,), daemon=True).start()
        return Response(200, dict(batch))

    def _set(self, batch: dict[str, Any], **values: Any) -> None:
        with self.lock:
            batch.update(values)

    def _forward(self, body: dict[str, Any]) -> tuple[int, Any]:
        data = json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.upstream}/chat/completions", data=data, headers={"Content-Type": "application/json"}
        )
        with self.lock:
            self.forwarded += 1
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def _process(self, batch_id: str) -> None:
        batch = self.batches[batch_id]
        time.sleep(self.step_s)
        lines, errors = validate_input(self.contents[batch["input_file_id"]], ENDPOINT)
        if errors:
            self._set(
                batch, status="failed", failed_at=int(time.time()), errors={"object": "list", "data": errors}
            )
            return
        with self.lock:  # a batch cancelled while validating stays cancelling: no line runs
            if batch["status"] == "validating":
                batch.update(status="in_progress", in_progress_at=int(time.time()))
        batch["request_counts"]["total"] = len(lines)
        time.sleep(self.step_s)
        out, err, ended = self._run_lines(batch, lines)
        self._set(batch, status="finalizing", finalizing_at=int(time.time()))
        time.sleep(self.step_s)
        with self.lock:
            if out:
                batch["output_file_id"] = self.add_file(out, f"{batch_id}_output.jsonl", "batch_output")["id"]
            if err:
                batch["error_file_id"] = self.add_file(err, f"{batch_id}_error.jsonl", "batch_output")["id"]
            batch.update(status=ended, **{f"{ended}_at": int(time.time())})

    def _run_lines(
        self, batch: dict[str, Any], lines: list[tuple[str, dict[str, Any]]]
    ) -> tuple[bytes, bytes, str]:
        out, err, ended = b"", b"", "completed"
        counts = batch["request_counts"]
        for n, (custom_id, body) in enumerate(lines, 1):
            if batch["status"] == "cancelling":
                ended = "cancelled"
            elif self.expire_after is not None and n > self.expire_after:
                ended = "expired"
            if ended != "completed":
                code = f"batch_{ended}"
                err += _result(
                    custom_id, n, None, None, {"code": code, "message": f"The request was not run: {code}."}
                )
                continue
            if self.error_every and n % self.error_every == 0:
                status, answer = 500, {"error": {"message": "injected server error", "type": "server_error"}}
            else:
                status, answer = self._forward(body)
            with self.lock:
                counts["completed" if status == 200 else "failed"] += 1
            if status == 200:
                out += _result(custom_id, n, status, answer, None)
            else:
                err += _result(custom_id, n, status, answer, None)
        return out, err, ended
