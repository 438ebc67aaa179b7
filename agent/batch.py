"""A plan's LLM requests as Batch API files, and their answers back into the decision cache.

    export: the plan's distinct requests the decision cache cannot answer yet -> an OpenAI Batch API
            input file (one line per request: custom_id = its decision-cache key, body = what the
            live path sends, built by instructor for the configured mode)
    import: a Batch API output file (OpenAI's, or vLLM run-batch's: the same shape) -> each answer
            parsed by instructor with the request's own response model, as the live path parses it,
            and stored under its custom_id; the next plan asks nothing for those requests

An answer that does not validate is stored as the deterministic failure the live path stores
(`invalid_output`, `truncated_output`); error lines and non-200 answers are not stored, so the live
path asks again. One import is one transaction: a bad file stores nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Final

from instructor.processing.response import handle_response_model, process_response
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent.cache import DecisionCache
from agent.context import data_as_of, load_contact_history, load_contexts, open_warehouse, reference_for
from agent.errors import AgentError
from agent.llm import INSTRUCTOR_MODES, as_proposal, classify_failure, proposal_key, response_model_for_prompt
from agent.pipeline import Pipeline
from agent.policies import LLMPolicy
from agent.prompts import RenderedPrompt
from core.config import LLMSettings, RunConfig
from core.contracts import LLMAttempt, Mode, Proposal
from core.errors import ConfigError, UserError, inline
from core.policy_kinds import LLM, kind
from warehouse.ownership import check_dir, move_aside

CHAT_URL: Final = "/v1/chat/completions"


class BatchFileError(AgentError, UserError):
    """A file given to a batch command is missing, unreadable or not the Batch API format it should be."""


class BatchSettings(RunConfig):
    """The plan whose requests a batch file holds: `make plan`'s settings, in LLM mode."""

    mode: Mode = LLM.name
    limit: Annotated[int, Field(ge=1)] | None = None  # only the first N segmented customers

    @model_validator(mode="after")
    def _llm_only(self) -> BatchSettings:
        if not kind(self.mode).needs_endpoint:
            raise ConfigError(
                "MODE / NBA_MODE", f"batch files hold LLM requests: leave it unset, or {LLM.name}", self.mode
            )
        if not self.llm.cache:
            raise ConfigError(
                "NBA_LLM__CACHE", "is off: a batch's answers reach a plan through the decision cache"
            )
        return self


@dataclass(frozen=True)
class BatchRequest:
    """One distinct request of a plan: its decision-cache key, prompt and response model."""

    key: str
    prompt: RenderedPrompt
    response_model: type[BaseModel]


def plan_requests(settings: BatchSettings, cache: DecisionCache) -> dict[str, BatchRequest]:
    """The distinct LLM requests `make plan` with these settings makes (cached ones included), by key:
    the same contexts, contact history, eligibility, ranking and prompts as the plan's pipeline."""
    with open_warehouse() as con:
        as_of = settings.as_of or data_as_of(con)
        contexts = load_contexts(con, segment=settings.segment)[: settings.limit]
        window = max(settings.suppress_hours, 24 * 7)  # as activation.run reads it
        history = load_contact_history(con, since=as_of - timedelta(hours=window))
        ref = reference_for(con)
        pipe = Pipeline.from_config(settings, run_id="batch", as_of=as_of, ref=ref, cache=cache, con=con)
    policy = pipe.policy
    assert isinstance(policy, LLMPolicy)
    todo = [(ctx, elig) for ctx in contexts if (elig := pipe.eligibility(ctx, history)).needs_proposal]
    out: dict[str, BatchRequest] = {}
    for ctx, prompt in policy.requests(todo):
        model = response_model_for_prompt(ctx, prompt, ref)
        key = proposal_key(settings.llm, ctx, prompt, ref, model)
        out.setdefault(key, BatchRequest(key, prompt, model))
    return out


def check_warehouse() -> None:
    """Refuse (one line, as `open_warehouse` does) a warehouse a plan cannot be read from, before a
    command creates or writes anything (the decision cache, OUT)."""
    with open_warehouse():
        pass


def request_body(settings: LLMSettings, request: BatchRequest) -> dict[str, Any]:
    """The chat-completions body the live path sends for this request: instructor's own request
    building for the configured mode (tools, or response_format json_schema) on the client's kwargs."""
    _, body = handle_response_model(
        request.response_model,
        INSTRUCTOR_MODES[settings.resolved_instructor_mode],
        model=settings.model,
        messages=request.prompt.messages(),
        temperature=settings.temperature,
        seed=settings.seed,
        max_tokens=settings.max_tokens,
    )
    return body


def claim_out(out: Path, overwrite: bool) -> Path | None:
    """Refuse (BatchFileError, one line) to write over a file at OUT; with `overwrite`, move it aside
    to `<OUT>.replaced-<time>` first, as `make build OVERWRITE=1` does, and return where it went."""
    if not (out.exists() or out.is_symlink()):
        return None
    if not overwrite:
        raise BatchFileError(
            f"OUT={inline(out)} exists; nothing was written: choose another OUT=, or give OVERWRITE=1 "
            f"(--overwrite) to move it aside to {inline(out.name)}.replaced-<time> and write a new one"
        )
    try:
        return move_aside(out)
    except OSError as exc:
        raise BatchFileError(
            f"cannot move {inline(out)} aside: {exc.strerror or exc}: choose another OUT="
        ) from None


def export_requests(
    settings: BatchSettings,
    out: Path,
    *,
    overwrite: bool = False,
    say: Callable[[str], None] = lambda _s: None,
) -> dict[str, int]:
    """Write the plan's requests the cache cannot answer as a Batch API input file (atomically). A file
    already at `out` is refused before anything is read, or with `overwrite` moved aside first."""
    aside = None
    if not overwrite:
        claim_out(out, overwrite=False)  # an OUT in the way is refused first, with nothing read
    check_warehouse()  # a missing or foreign warehouse: refused before OUT is moved or the cache made
    check_dir("cache")  # so is a cache folder that is not ours (OUT was moved aside, then refused)
    if overwrite:
        aside = claim_out(out, overwrite=True)
    if aside is not None:
        say(f"moved the old {inline(out)} aside to {inline(aside)}")
    cache = DecisionCache()
    try:
        requests = plan_requests(settings, cache)
        todo = [r for r in requests.values() if not cache.contains(r.key)]
    finally:
        cache.close()
    lines = [
        json.dumps(
            {"custom_id": r.key, "method": "POST", "url": CHAT_URL, "body": request_body(settings.llm, r)},
            ensure_ascii=False,
        )
        for r in todo
    ]
    write_atomically(out, "".join(line + "\n" for line in lines))
    return {"distinct": len(requests), "cached": len(requests) - len(todo), "exported": len(todo)}


def write_atomically(path: Path, data: str | bytes) -> None:
    """Write a whole file or nothing: a temporary file beside it, then renamed over it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except OSError as exc:
        raise BatchFileError(
            f"cannot write {inline(path)}: {exc.strerror or exc}: choose a writable OUT="
        ) from None


# --- Batch API output files ----------------------------------------------------------------------


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore")
    status_code: int
    request_id: str | None = None
    body: Any = None


class OutputLine(BaseModel):
    """One line of a Batch API output (or error) file: OpenAI's and vLLM run-batch's shape."""

    model_config = ConfigDict(extra="ignore")
    id: str | None = None
    custom_id: str
    response: _Response | None
    error: dict[str, Any] | None = None

    @property
    def answered(self) -> bool:
        return self.error is None and self.response is not None and self.response.status_code == 200


def read_lines(path: Path, what: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, JSON object) of every non-blank line; one clear error for anything else."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BatchFileError(f"FILE={inline(path)}: no such file: give the path of a {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BatchFileError(f"FILE={inline(path)}: cannot read it ({exc}): give a readable {what}") from None
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict):
            raise BatchFileError(
                f"FILE={inline(path)}: line {n} is not a JSON object: it is not a {what} (JSONL)"
            )
        rows.append((n, row))
    if not rows:
        raise BatchFileError(f"FILE={inline(path)}: the file is empty: give a {what}")
    return rows


def read_output(path: Path) -> dict[str, OutputLine]:
    """A Batch API output file by custom_id (an answered line wins over an error line for the same id)."""
    what = "Batch API output file"
    out: dict[str, OutputLine] = {}
    for n, row in read_lines(path, what):
        if "response" not in row and {"body", "method"} <= row.keys():
            raise BatchFileError(
                f"FILE={inline(path)} is a Batch API input file (requests), not the output: run it "
                "(make llm-batch-run FILE=... OUT=..., or on a Batch API) and import the output"
            )
        try:
            line = OutputLine.model_validate(row)
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem["loc"])
            raise BatchFileError(
                f"FILE={inline(path)}: line {n} is not a {what} line ({where}: {problem['msg']}): "
                "give the file the Batch API returned (output_file_id or error_file_id)"
            ) from None
        if line.custom_id not in out or (line.answered and not out[line.custom_id].answered):
            out[line.custom_id] = line
    return out


def parse_answer(
    settings: LLMSettings, request: BatchRequest, body: Any
) -> tuple[Proposal | None, str | None, LLMAttempt]:
    """An answered line's proposal, or the failure the live path would record for it: instructor's
    parser for the mode, with the request's response model (no reask: the batch asked once)."""
    mode = INSTRUCTOR_MODES[settings.resolved_instructor_mode]
    usage = body.get("usage") if isinstance(body, dict) else None
    attempt = LLMAttempt(
        attempt=1,
        prompt_tokens=int((usage or {}).get("prompt_tokens") or 0),
        completion_tokens=int((usage or {}).get("completion_tokens") or 0),
    )
    try:
        completion = ChatCompletion.model_validate(body)
        model, _ = handle_response_model(request.response_model, mode)
        answer = process_response(completion, response_model=model, stream=False, strict=True, mode=mode)
        return as_proposal(answer, request.prompt), None, attempt
    except Exception as exc:  # noqa: BLE001 - every bad answer is a recorded failure, as live
        error = f"{type(exc).__name__}: {str(exc)[:200]}"
        return None, classify_failure(exc), attempt.model_copy(update={"error": error})


def import_output(settings: BatchSettings, path: Path, *, skip_unknown: bool = False) -> dict[str, int]:
    """Fill the decision cache from a Batch API output file, in one transaction. Answers to requests
    this plan does not make refuse the import (unless `skip_unknown`); answers already cached stay."""
    lines = read_output(path)
    check_warehouse()  # a missing or foreign warehouse: refused before the cache is created
    cache = DecisionCache()
    try:
        requests = plan_requests(settings, cache)
        unknown = [c for c in lines if c not in requests]
        if unknown and (not skip_unknown or len(unknown) == len(lines)):
            raise BatchFileError(
                f"FILE={inline(path)}: {len(unknown)} of {len(lines)} custom_ids are not requests of this plan "
                f"(first: {unknown[0]}): import with the settings the export used (SEGMENT, PROMPT_VERSION, "
                "GOAL, DISCOUNT_CAP, AS_OF, LIMIT, OPENAI_MODEL, NBA_LLM__*)"
                + ("" if len(unknown) == len(lines) else ", or SKIP_UNKNOWN=1 to import the others")
                + "; nothing was imported"
            )
        counts = dict.fromkeys(("imported", "invalid", "errors", "unknown", "already_cached"), 0)
        counts["unknown"] = len(unknown)
        with cache.transaction():
            for custom_id, line in lines.items():
                request = requests.get(custom_id)
                if request is None:
                    continue
                if not line.answered or line.response is None:
                    counts["errors"] += 1
                elif cache.contains(custom_id):
                    counts["already_cached"] += 1
                else:
                    proposal, failure, attempt = parse_answer(settings.llm, request, line.response.body)
                    cache.put(custom_id, proposal, [attempt], failure)
                    counts["imported" if proposal is not None else "invalid"] += 1
    finally:
        cache.close()
    return counts
