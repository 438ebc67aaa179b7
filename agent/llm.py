"""The one place an LLM is called: instructor over the async openai client.

Per segment, the response model narrows channel and template_id to that segment's action bank, and
a validator asks the model again (bounded reasks) when it pairs a template with the wrong channel.
Tokens and latency are counted per attempt from instructor's hooks (a ContextVar keeps concurrent
calls apart), not from the final object. Every failure (timeout, HTTP error, invalid or truncated
output) ends as a ProposalOutcome with a reason; nothing here raises into the run.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx2
import instructor
import openai
from instructor.core import IncompleteOutputException, InstructorRetryException
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from agent.cache import DecisionCache, cache_key
from agent.contracts import CustomerContext, LLMAttempt, Proposal
from agent.prompts import RenderedPrompt
from agent.reference import ReferenceData, load_reference
from agent.settings import LLMSettings

# Failures the same request reproduces: cached like answers. Timeouts and HTTP errors are retried.
DETERMINISTIC_FAILURES = frozenset({"invalid_output", "truncated_output"})
_MODES = {
    "tools": instructor.Mode.TOOLS,
    "json_schema": instructor.Mode.JSON_SCHEMA,
    "json": instructor.Mode.JSON,
    "md_json": instructor.Mode.MD_JSON,
}
_trail: ContextVar[list[dict[str, Any]] | None] = ContextVar("nba_llm_trail", default=None)
# instructor logs an error line (with the model's raw output) for every answer that stays invalid;
# each one is already classified, counted in the run summary and kept in the decision log, so
# without logging configured by the caller these lines are not printed (a configured root handler
# still receives them).
logging.getLogger("instructor").addHandler(logging.NullHandler())


@dataclass
class ProposalOutcome:
    customer_id: str
    proposal: Proposal | None
    failure_reason: str | None
    attempts: list[LLMAttempt] = field(default_factory=list)
    cached: bool = False


_MODELS: dict[tuple[str, int], type[BaseModel]] = {}
_CHECKED: set[type[BaseModel]] = set()  # our response models, checked once by instructor when built


def _install_check_once() -> Callable[[Any], None]:
    """instructor re-checks the response model for async validators about 7 times per create, each
    time walking pydantic's whole BaseModel namespace (~1 ms of CPU per decision, profiled). Our
    response models are built once per segment, checked with instructor's own function then, and
    never change. `_reject_async_validators_once` answers for those and hands every other model to
    instructor; it is installed where instructor looks the function up (the module attribute, read
    at each call, and patch.py's import). Returns instructor's own check."""
    from instructor.v2.core import patch as patch_module
    from instructor.v2.validation import async_validators

    current = async_validators.reject_async_validators
    original: Callable[[Any], None] = getattr(current, "__wrapped__", current)
    async_validators.reject_async_validators = _reject_async_validators_once
    patch_module.reject_async_validators = _reject_async_validators_once  # type: ignore[attr-defined]
    return original


def _reject_async_validators_once(response_model: Any) -> None:
    if response_model not in _CHECKED:
        _instructor_check(response_model)


_instructor_check = _install_check_once()
_reject_async_validators_once.__wrapped__ = _instructor_check  # type: ignore[attr-defined]


class _ProposalSchema(instructor.OpenAISchema):
    """A next-best action for one customer: one template of the allowed list, its channel, a discount,
    and the message."""

    model_config = ConfigDict(extra="forbid")


def response_model_for(segment: str, ref: ReferenceData | None = None) -> type[BaseModel]:
    """The response model for one segment: template_id and channel narrowed to its action bank."""
    ref = ref or load_reference()
    key = (segment, id(ref))
    if key not in _MODELS:
        model = _build_response_model(segment, ref)
        _instructor_check(model)
        _CHECKED.add(model)
        _MODELS[key] = model
    return _MODELS[key]


def _build_response_model(segment: str, ref: ReferenceData) -> type[BaseModel]:
    actions = ref.actions_for(segment)
    pairs = {a.template_id: a.channel for a in actions}
    templates = tuple(sorted(pairs))
    channels = tuple(sorted(set(pairs.values())))

    def check_pair(self: Any) -> Any:
        expected = pairs.get(self.template_id)
        if expected is not None and expected != self.channel:
            raise ValueError(
                f'template_id "{self.template_id}" is sent on channel "{expected}", not "{self.channel}": '
                f'answer again with channel "{expected}"'
            )
        return self

    # template_id comes first: a grammar-constrained model then picks the channel knowing the template.
    # Built on instructor's schema base once per segment, so instructor does not re-wrap it per call.
    # The ignores below: create_model's stubs type __validators__ values as plain callables (a
    # model_validator is a pydantic descriptor proxy), and a Literal built from runtime tuples is not a
    # static type, so mypy rejects both although pydantic accepts them at runtime.
    return create_model(
        f"Proposal_{segment}",
        __base__=_ProposalSchema,
        __validators__={"check_pair": model_validator(mode="after")(check_pair)},  # type: ignore[dict-item]
        template_id=(Literal[templates], Field(description="template_id of one allowed action")),  # type: ignore[valid-type,arg-type]
        channel=(Literal[channels], Field(description="the channel of that action")),  # type: ignore[valid-type,arg-type]
        discount_pct=(float, Field(description="discount percentage offered, 0 for none")),
        subject=(str | None, Field(default=None, description="email subject; null for sms and push")),
        message=(str, Field(min_length=1, description="the message text sent to the customer")),
        rationale=(str, Field(default="", description="one sentence: why this action")),
    )


def classify_failure(exc: BaseException) -> str:
    """Map an exception from the LLM path to a short, stable fallback reason code."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, openai.APITimeoutError | asyncio.TimeoutError | TimeoutError):
            return "timeout"
        if isinstance(cur, openai.APIStatusError):
            return f"http_{cur.status_code}"
        if isinstance(cur, openai.APIConnectionError):
            return "connection_error"
        if isinstance(cur, IncompleteOutputException):
            return "truncated_output"
        cur = cur.__cause__ or cur.__context__
    return "invalid_output"


def proposal_key(settings: LLMSettings, ctx: CustomerContext, prompt: RenderedPrompt) -> str:
    """The decision-cache key of one LLM proposal."""
    return cache_key(
        model=settings.model,
        prompt_version=prompt.version,
        messages=prompt.messages(),
        context_hash=ctx.context_hash(),
        fingerprint=settings.cache_fingerprint(),
    )


def _http_client(settings: LLMSettings) -> httpx2.AsyncClient:
    """openai's own HTTP client on the chosen transport, with a pool as wide as the concurrency.

    aiohttp (openai's DefaultAioHttpClient; aiohttp comes with instructor) costs about half the CPU
    per request of the default httpx transport, whose connection pool checks every connection on every
    request (bench/bench_llm_overhead.py); `NBA_LLM__HTTP_TRANSPORT=httpx` switches back."""
    width = max(settings.concurrency, 1)
    limits = httpx2.Limits(max_connections=width, max_keepalive_connections=width)
    if settings.http_transport == "aiohttp":
        return openai.DefaultAioHttpClient(timeout=settings.timeout_s, limits=limits)
    return openai.DefaultAsyncHttpxClient(timeout=settings.timeout_s, limits=limits)


def chat_completions(raw: openai.AsyncOpenAI) -> Callable[..., Awaitable[ChatCompletion]]:
    """`POST /chat/completions` through the openai client (its auth, timeout, retries, error types and
    response model) with the body sent exactly as instructor built it.

    `client.chat.completions.create` first runs the SDK's request transform, which walks every
    message and the whole tool schema against the params' TypedDict annotations; for the plain JSON
    this module sends it is the identity (tests/agent/test_llm_transport.py compares the two bodies)
    and it was the largest single cost of a decision (~20% of the CPU, profiled)."""

    async def create(**body: Any) -> ChatCompletion:
        return await raw.post(
            "/chat/completions",
            body=body,
            cast_to=ChatCompletion,
            options={"security": {"bearer_auth": True}},
        )

    return create


GC_GEN0_THRESHOLD = 100_000
_gc_state: dict[str, Any] = {"depth": 0, "saved": None}


@contextmanager
def fewer_gc_passes() -> Iterator[None]:
    """Raise the collector's thresholds while a batch of LLM calls runs, then restore them.

    Each call allocates thousands of short-lived objects (request and response JSON, pydantic models)
    and almost none live in cycles; at the default gen-0 threshold (700) the collector ran every few
    dozen of them and took ~10% of the client's CPU (bench/bench_llm_overhead.py: 3.1 -> 2.8 ms per
    decision). Nested or overlapping batches keep the raised thresholds until the last one ends,
    which restores the thresholds found by the first."""
    if _gc_state["depth"] == 0:
        saved = gc.get_threshold()
        _gc_state["saved"] = saved
        gc.set_threshold(max(saved[0], GC_GEN0_THRESHOLD), max(saved[1], 50), max(saved[2], 100))
    _gc_state["depth"] += 1
    try:
        yield
    finally:
        _gc_state["depth"] -= 1
        if _gc_state["depth"] == 0:
            gc.set_threshold(*_gc_state["saved"])


class LLMClient:
    def __init__(
        self,
        settings: LLMSettings,
        *,
        base_url: str | None = None,
        cache: DecisionCache | None = None,
        ref: ReferenceData | None = None,
    ) -> None:
        self.settings = settings
        self.ref = ref or load_reference()
        self.cache = cache
        key = settings.api_key.get_secret_value() if settings.api_key else "sk-no-key-needed"
        self.http = _http_client(settings)
        raw = openai.AsyncOpenAI(
            base_url=base_url or settings.base_url,
            api_key=key,
            timeout=settings.timeout_s,
            max_retries=settings.http_retries,
            http_client=self.http,
        )
        mode = _MODES[settings.mode]
        self._client = instructor.AsyncInstructor(
            client=raw, create=instructor.patch(create=chat_completions(raw), mode=mode), mode=mode
        )
        self._client.on("completion:kwargs", self._on_kwargs)
        self._client.on("completion:response", self._on_response)
        self._client.on("completion:error", self._on_error)
        self._client.on("parse:error", self._on_error)
        self.calls = 0

    # --- hooks: one trail per asyncio task -------------------------------------------------------
    def _on_kwargs(self, *args: Any, **kwargs: Any) -> None:
        trail = _trail.get()
        if trail is not None:
            trail.append({"attempt": len(trail) + 1, "t0": time.perf_counter()})
            self.calls += 1

    def _on_response(self, response: Any) -> None:
        trail = _trail.get()
        if trail:
            cur = trail[-1]
            cur["latency_ms"] = (time.perf_counter() - cur["t0"]) * 1000
            usage = getattr(response, "usage", None)
            cur["prompt_tokens"] = getattr(usage, "prompt_tokens", 0) or 0
            cur["completion_tokens"] = getattr(usage, "completion_tokens", 0) or 0

    def _on_error(self, error: Exception, *args: Any, **kwargs: Any) -> None:
        trail = _trail.get()
        if trail:
            cur = trail[-1]
            cur.setdefault("latency_ms", (time.perf_counter() - cur["t0"]) * 1000)
            cur["error"] = f"{type(error).__name__}: {str(error)[:200]}"

    # --- calls -----------------------------------------------------------------------------------
    async def propose(self, ctx: CustomerContext, prompt: RenderedPrompt) -> ProposalOutcome:
        s = self.settings
        messages = prompt.messages()
        cache = self.cache if s.cache else None
        key = proposal_key(s, ctx, prompt) if cache is not None else ""  # hashing costs: only with a cache
        if cache is not None:
            hit = cache.get(key)
            if hit is not None:
                data, failure, attempts = hit
                cached = Proposal.model_validate(data) if data is not None else None
                return ProposalOutcome(ctx.customer_id, cached, failure, attempts, cached=True)
        trail: list[dict[str, Any]] = []
        token = _trail.set(trail)
        try:
            result = await self._client.chat.completions.create(
                model=s.model,
                response_model=response_model_for(ctx.segment, self.ref),
                messages=messages,  # type: ignore[arg-type]
                max_retries=s.max_retries,  # instructor: reasks after the first attempt
                temperature=s.temperature,
                seed=s.seed,
                max_tokens=s.max_tokens,
            )
            proposal = Proposal.model_validate(result.model_dump())
            reason = None
        except Exception as exc:  # noqa: BLE001 - a run never fails because an LLM did
            proposal, reason = None, classify_failure(exc)
        finally:
            _trail.reset(token)
        attempts = [
            LLMAttempt(
                attempt=t["attempt"],
                prompt_tokens=t.get("prompt_tokens", 0),
                completion_tokens=t.get("completion_tokens", 0),
                latency_ms=round(t.get("latency_ms", 0.0), 2),
                error=t.get("error"),
            )
            for t in trail
        ]
        if cache is not None and (proposal is not None or reason in DETERMINISTIC_FAILURES):
            cache.put(key, proposal, attempts, reason)
        return ProposalOutcome(ctx.customer_id, proposal, reason, attempts)

    async def propose_many(
        self,
        items: Sequence[tuple[CustomerContext, RenderedPrompt]],
        on_done: Callable[[ProposalOutcome], None] | None = None,
    ) -> list[ProposalOutcome]:
        sem = asyncio.Semaphore(self.settings.concurrency)

        async def one(ctx: CustomerContext, prompt: RenderedPrompt) -> ProposalOutcome:
            async with sem:
                out = await self.propose(ctx, prompt)
            if on_done:
                on_done(out)
            return out

        with fewer_gc_passes():
            return list(await asyncio.gather(*(one(c, p) for c, p in items)))

    async def aclose(self) -> None:
        client = getattr(self._client, "client", None)
        if client is not None and hasattr(client, "close"):
            await client.close()


# Exceptions that InstructorRetryException wraps are classified by classify_failure.
__all__ = [
    "LLMClient",
    "ProposalOutcome",
    "classify_failure",
    "response_model_for",
    "InstructorRetryException",
]
