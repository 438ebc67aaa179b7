"""Run a Batch API input file on the configured endpoint's own Batch API (OpenAI's, or any server
that implements it) with the openai SDK: upload, create, poll, download.

The batch id is kept beside OUT (`OUT.batch`) from the moment the batch exists, so an interrupted
wait resumes the same batch instead of paying for a second one. OUT gets the output file's lines and
then the error file's (expired, cancelled and failed requests): `import` stores the answers and
leaves the rest to the live path.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import openai
from openai.types import Batch

from agent.batch import CHAT_URL, BatchFileError, claim_out, write_atomically
from agent.batch_run import read_input
from agent.errors import AgentError
from core.config import LLMSettings
from core.errors import UserError, inline

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


class BatchFailed(AgentError):
    """The Batch API refused the batch (its input file): nothing was answered."""


class BatchEndpointError(AgentError):
    """The Batch API could not be reached, or refused a request (the key, the endpoint)."""


def _endpoint(client: openai.OpenAI) -> str:
    """scheme://host[:port] of the client's endpoint: never its path or query, where a key may be."""
    url = client.base_url
    return f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")


def _endpoint_error(client: openai.OpenAI, exc: openai.OpenAIError, resume: str) -> BatchEndpointError:
    """The SDK's error as one line naming the setting to check (the key itself never shown)."""
    where = _endpoint(client)
    if isinstance(exc, openai.APIConnectionError):  # refused, unreachable, timed out
        kind = "timed out" if isinstance(exc, openai.APITimeoutError) else "could not be reached"
        return BatchEndpointError(
            f"the Batch API at {where} {kind}: check OPENAI_BASE_URL, then run again{resume}"
        )
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return BatchEndpointError(f"the Batch API at {where} refused the key: check OPENAI_API_KEY{resume}")
    if isinstance(exc, openai.APIStatusError):
        body = exc.response.text.strip().splitlines()
        said = f": {body[0][:200]}" if body else ""
        return BatchEndpointError(
            f"the Batch API at {where} answered {exc.status_code}{said}: check OPENAI_BASE_URL{resume}"
        )
    text = str(exc).strip().splitlines()
    return BatchEndpointError(f"the Batch API at {where}: {text[0] if text else type(exc).__name__}{resume}")


def _client(settings: LLMSettings) -> openai.OpenAI:
    if settings.api_key is None:
        raise UserError(
            "OPENAI_API_KEY: a Batch API needs an endpoint and its key (the embedded model runs the file "
            "itself: make llm-batch-run FILE=... OUT=...)"
        )
    return openai.OpenAI(
        base_url=settings.base_url, api_key=settings.api_key.get_secret_value(), timeout=settings.timeout_s
    )


def _wait(client: openai.OpenAI, batch_id: str, poll_s: float, say: Callable[[str], None]) -> Batch:
    seen = ""
    while True:
        batch = client.batches.retrieve(batch_id)
        counts = batch.request_counts
        now = (
            f"{batch.status} {counts.completed}/{counts.total} done, {counts.failed} failed"
            if counts
            else batch.status
        )
        if now != seen:
            say(f"batch {batch_id}: {now}")
            seen = now
        if batch.status in TERMINAL:
            return batch
        time.sleep(poll_s)


_BATCH_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")


def submit_file(
    settings: LLMSettings,
    file: Path,
    out: Path,
    *,
    poll_s: float = 30.0,
    overwrite: bool = False,
    say: Callable[[str], None] = print,
) -> Batch:
    """Upload `file`, create its batch (or resume the one OUT.batch names), wait, write OUT. A file
    already at OUT (a folder included) is refused before anything is uploaded, unless this resumes
    a batch, or, with `overwrite`, moved aside first: it was replaced once the batch was done."""
    read_input(file)  # a bad file fails here, in one line, not after an upload
    state = out.with_name(out.name + ".batch")
    batch_id = _resumed_batch(state)
    if not batch_id:
        aside = claim_out(out, overwrite)
        if aside is not None:
            say(f"moved the old {inline(out)} aside to {inline(aside)}")
    client = _client(settings)
    try:
        return _submit(client, file, out, state, batch_id, poll_s, say)
    except openai.OpenAIError as exc:
        resume = f" ({state.name} keeps the batch id: the same batch resumes)" if state.exists() else ""
        raise _endpoint_error(client, exc, resume) from None


def _resumed_batch(state: Path) -> str:
    """The batch id OUT.batch keeps from an earlier submit to OUT, or "" without one; a file there
    that holds no batch id is someone else's: refused, left as it is (it was sent as a batch id)."""
    if not (state.exists() or state.is_symlink()):
        return ""
    try:
        text = (
            state.read_text(encoding="utf-8").strip()
            if state.is_file() and state.stat().st_size < 4096
            else None
        )
    except (OSError, UnicodeDecodeError):
        text = None
    if text is None or not _BATCH_ID.fullmatch(text):
        raise BatchFileError(
            f"{inline(state)} does not hold a batch id of an earlier submit to OUT=; nothing was sent: "
            "move it away, or choose another OUT="
        )
    return text


def _submit(
    client: openai.OpenAI,
    file: Path,
    out: Path,
    state: Path,
    batch_id: str,
    poll_s: float,
    say: Callable[[str], None],
) -> Batch:
    """Resume `batch_id` (kept in `state`), or upload `file` and create one when it is ""."""
    if not batch_id:
        with file.open("rb") as fh:
            uploaded = client.files.create(file=fh, purpose="batch")
        created = client.batches.create(input_file_id=uploaded.id, endpoint=CHAT_URL, completion_window="24h")
        batch_id = created.id
        write_atomically(state, batch_id + "\n")
        say(f"batch {batch_id} created from {file} (file {uploaded.id})")
    batch = _wait(client, batch_id, poll_s, say)
    if batch.status == "failed":
        state.unlink(missing_ok=True)
        errors = (batch.errors.data if batch.errors else None) or []
        first = f" (line {errors[0].line}: {errors[0].message})" if errors else ""
        raise BatchFailed(
            f"batch {batch_id} failed: {len(errors)} errors in FILE={file}{first}: export it again"
        )
    parts = [client.files.content(fid).content for fid in (batch.output_file_id, batch.error_file_id) if fid]
    write_atomically(out, b"".join(parts))
    state.unlink(missing_ok=True)
    return batch
