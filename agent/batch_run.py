"""Run a Batch API input file against a chat-completions endpoint (the embedded model unless one is
configured) and write the Batch API output file, resumably.

Each answer is appended to OUT as one line and flushed and fsynced before the next is written, so a
run killed at any point (`kill -9` included) loses at most the requests in flight. A rerun skips the
custom_ids OUT already holds and drops a half-written last line. Answers are what the endpoint
returned (200, or a 4xx it will return again); transport failures, 429 and 5xx are not written: the
next run asks again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from agent.batch import CHAT_URL, BatchFileError, read_lines
from agent.policies import LLMEndpoint
from core.config import LLMSettings
from core.errors import UserError, inline
from core.gc_passes import fewer_gc_passes

_RETRYABLE = frozenset({408, 409, 429})


@dataclass(frozen=True)
class InputLine:
    custom_id: str
    body: dict[str, Any]


def read_input(path: Path) -> list[InputLine]:
    """The requests of a Batch API input file (chat completions), in order; custom_ids unique."""
    what = "Batch API input file"
    out: list[InputLine] = []
    seen: set[str] = set()
    for n, row in read_lines(path, what):
        cid, body = row.get("custom_id"), row.get("body")
        if "response" in row and "body" not in row:
            raise BatchFileError(
                f"FILE={path} is a Batch API output file (answers): import it (make llm-batch-import FILE=...)"
            )
        if not isinstance(cid, str) or not cid or not isinstance(body, dict) or row.get("url") != CHAT_URL:
            raise BatchFileError(
                f"FILE={path}: line {n} is not a Batch API request (custom_id, method POST, url {CHAT_URL}, "
                "body): give the file make llm-batch-export wrote"
            )
        if cid in seen:
            raise BatchFileError(f"FILE={path}: custom_id {cid} appears twice (line {n}): export it again")
        seen.add(cid)
        out.append(InputLine(cid, body))
    return out


def answered_ids(out: Path) -> set[str]:
    """The custom_ids OUT already holds; a half-written last line (a killed run's) is cut off, once
    every whole line is known to be an answer: a file of someone else's at OUT is refused as it is
    (its last line, or the whole of a one-line file, was cut off first when it had no line break)."""
    if out.is_dir():
        raise BatchFileError(
            f"OUT={inline(out)} is a folder: give the path of a file (new, or this FILE's answers)"
        )
    if not out.exists():
        return set()
    data = out.read_bytes()
    end = data.rfind(b"\n") + 1
    lines = data[:end].splitlines()
    ids = {_answered_id(out, n, line) for n, line in enumerate(lines, 1)}
    tail = data[end:]
    if tail:
        # the line a killed run was writing starts as an answer does; a whole JSON value must be one
        if not tail.startswith(b'{"') or _is_json(tail):
            _answered_id(out, len(lines) + 1, tail)  # raises unless it is an answer
        with out.open("r+b") as fh:  # cut off: its request is asked again
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())
    return ids


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


def _answered_id(out: Path, n: int, line: bytes) -> str:
    try:
        return str(json.loads(line)["custom_id"])
    except (ValueError, KeyError, TypeError):
        raise BatchFileError(
            f"OUT={inline(out)}: line {n} is not a Batch API output line: give a new OUT= (or the one this "
            "FILE was run into before)"
        ) from None


def _stable_id(prefix: str, custom_id: str) -> str:
    return f"{prefix}_{hashlib.sha256(custom_id.encode()).hexdigest()[:24]}"


def output_line(custom_id: str, status: int, body: Any, request_id: str | None) -> str:
    """One line of the Batch API output format."""
    return json.dumps(
        {
            "id": _stable_id("batch_req", custom_id),
            "custom_id": custom_id,
            "response": {
                "status_code": status,
                "request_id": request_id or _stable_id("req", custom_id),
                "body": body,
            },
            "error": None,
        },
        ensure_ascii=False,
    )


def _append(fh: IO[bytes], line: str) -> None:
    fh.write(line.encode("utf-8") + b"\n")
    fh.flush()
    os.fsync(fh.fileno())


async def _ask(client: httpx.AsyncClient, url: str, line: InputLine) -> tuple[int, Any, str | None] | None:
    """(status, body, request id) of an answer worth keeping, or None to ask again next run."""
    try:
        resp = await client.post(url, json=line.body)
    except httpx.HTTPError:
        return None
    if resp.status_code in _RETRYABLE or resp.status_code >= 500:
        return None
    try:
        body = resp.json()
    except ValueError:
        body = {"error": {"message": resp.text[:500]}}
    return resp.status_code, body, resp.headers.get("x-request-id")


async def _run(settings: LLMSettings, base_url: str, todo: list[InputLine], out: Path) -> dict[str, int]:
    counts = {"answered": 0, "failed": 0}
    queue = iter(todo)  # workers take the next request; a million lines need no million tasks
    headers = {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"} if settings.api_key else {}
    limits = httpx.Limits(max_connections=settings.concurrency)
    url = base_url.rstrip("/") + "/chat/completions"
    async with httpx.AsyncClient(timeout=settings.timeout_s, headers=headers, limits=limits) as client:
        with out.open("ab") as fh:

            async def worker() -> None:
                for line in queue:
                    got = await _ask(client, url, line)
                    if got is None:
                        counts["failed"] += 1
                        continue
                    _append(fh, output_line(line.custom_id, *got))  # no await inside: one writer at a time
                    counts["answered"] += 1

            await asyncio.gather(*(worker() for _ in range(settings.concurrency)))
    return counts


def run_file(
    settings: LLMSettings, file: Path, out: Path, *, endpoint: LLMEndpoint | None = None
) -> dict[str, int]:
    """Answer every request of `file` that `out` does not hold yet, appending to `out`."""
    lines = read_input(file)
    done = answered_ids(out)
    todo = [line for line in lines if line.custom_id not in done]
    counts = {"requests": len(lines), "already_answered": len(lines) - len(todo), "answered": 0, "failed": 0}
    if not todo:
        return counts
    out.parent.mkdir(parents=True, exist_ok=True)
    served = endpoint or LLMEndpoint(settings)  # the embedded model is started here, stopped below
    try:
        base_url = served.url()
        if base_url is None:
            raise UserError("OPENAI_BASE_URL: an endpoint with a key needs its URL too")
        with fewer_gc_passes():
            counts |= asyncio.run(_run(settings, base_url, todo, out))
    finally:
        if endpoint is None:
            served.close()
    return counts
