"""The one place an LLM is called: instructor over the async openai client.

Per prompt, the response model narrows template_id to the actions the prompt lists (the segment's,
on the customer's reachable channels; the channel is the template's own, never asked for), the
discount to a whole percentage within the run's cap, the subject to what the offered channels need
and the text to their limits; on llama-server these become the grammar, elsewhere pydantic asks
again (bounded reasks).
Tokens and latency are counted per attempt from instructor's hooks (a ContextVar keeps concurrent
calls apart), not from the final object. Every failure (timeout, HTTP error, invalid or truncated
output) ends as a PolicyOutcome with a reason; nothing here raises into the run. The measured
transport workarounds live in agent/llm_transport.py.

The endpoint is resolved on the first call that the decision cache cannot answer, so a fully cached
run never starts the embedded model.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from functools import cache
from typing import Any, ClassVar, Literal

import instructor
import openai
from instructor.core import IncompleteOutputException, InstructorRetryException
from pydantic import BaseModel, ConfigDict, Field, computed_field, create_model

from agent.cache import DecisionCache, cache_key
from agent.llm_flow import STOPPED, Flow
from agent.llm_transport import check_response_models_once, fewer_gc_passes, http_client, post_as_built
from agent.prompts import Choice, RenderedPrompt
from core.config import LLMSettings
from core.contracts import CustomerContext, LLMAttempt, PolicyOutcome, Proposal
from core.reference import ReferenceData

# Failures the same request reproduces: cached like answers. Timeouts and HTTP errors are retried.
DETERMINISTIC_FAILURES = frozenset({"invalid_output", "truncated_output"})
INSTRUCTOR_MODES = {
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


class _ProposalSchema(instructor.OpenAISchema):
    """A next-best action for one customer: one template of the allowed list, a discount, and the
    message. The channel is the template's own (`channel_of`, set per segment): it is not asked for."""

    model_config = ConfigDict(extra="forbid")
    channel_of: ClassVar[Mapping[str, str]] = {}

    # Not in the schema the model answers (pydantic leaves computed fields out of the validation
    # schema), but in model_dump(), so the proposal has it. Asked for, SmolLM2 often wrote the wrong
    # channel (each a fallback: a reask never fixed one) and spent tokens on it every time.
    @computed_field  # type: ignore[prop-decorator]
    @property
    def channel(self) -> str:
        return type(self).channel_of[self.template_id]  # type: ignore[attr-defined]


@cache
def response_model_for(segment: str, ref: ReferenceData) -> type[BaseModel]:
    """The response model for one segment: template_id narrowed to its action bank, the discount to
    a whole percentage within the bank's range, and the text bounded by its channels' limits."""
    actions = ref.actions_for(segment)
    pairs = {a.template_id: a.channel for a in actions}
    top = int(max((a.max_discount_pct for a in actions), default=0))
    return check_response_models_once(_build_response_model(segment, ref, pairs, top, "optional"))


def _text_bounds(channels: Sequence[str], ref: ReferenceData) -> tuple[int, int]:
    """(message, subject) length bounds for answers on these channels: the longest channel limit
    (at most MESSAGE_CHARS), and the email subject limit when email is one of them (else 0)."""
    limits = [ref.channel_limits[c] for c in channels if c in ref.channel_limits]
    message = min(MESSAGE_CHARS, max((x.max_chars for x in limits), default=MESSAGE_CHARS))
    return message, max((x.max_subject_chars for x in limits), default=0)


Subject = Literal["required", "optional", "none"]


@cache
def response_model_for_offer(
    segment: str, offered: tuple[Choice, ...], ref: ReferenceData
) -> type[BaseModel]:
    """The response model for a prompt that lists `offered` (template_id, channel, discount within
    the run's cap): template_id one of them, the discount at most the largest on offer, and the
    subject required when every offered action is an email and left out when none is. On the
    segment's whole bank (`response_model_for`) the grammar let SmolLM2 name a template on a channel
    the customer cannot be reached on (a fallback), write a discount above the run's cap (clamped)
    and leave an email's subject out (the message then replaced by the approved copy)."""
    pairs = {t: c for t, c, _ in offered}
    top = int(max(d for _, _, d in offered))
    channels = set(pairs.values())
    subject: Subject = "required" if channels == {"email"} else "optional" if "email" in channels else "none"
    return check_response_models_once(_build_response_model(segment, ref, pairs, top, subject))


def _build_response_model(
    segment: str, ref: ReferenceData, pairs: Mapping[str, str], top: int, subject: Subject
) -> type[BaseModel]:
    templates = tuple(sorted(pairs))
    message_chars, subject_chars = _text_bounds(sorted(set(pairs.values())), ref)
    subject_field: dict[str, Any] = {}
    if subject == "required":
        subject_field["subject"] = (
            str,
            Field(min_length=1, max_length=subject_chars, description="email subject"),
        )
    elif subject == "optional":
        subject_field["subject"] = (
            str | None,
            Field(default=None, max_length=subject_chars, description="email subject; null for sms and push"),
        )
    # Whole percentages within the bank's range, and bounded text: each bound becomes the grammar's on
    # llama-server. Unbounded, SmolLM2 wrote discounts with a dozen decimals and rambled past
    # max_tokens (each cut-off answer a fallback). The guardrails still
    # clamp the discount to the run's cap and the action's range.
    # The ignores below: a Literal built from runtime tuples is not a static type, so mypy rejects it
    # although pydantic accepts it at runtime.
    model = create_model(
        f"Proposal_{segment}",
        __base__=_ProposalSchema,
        template_id=(Literal[templates], Field(description="template_id of one allowed action")),  # type: ignore[valid-type,arg-type]
        discount_pct=(int, Field(ge=0, le=top, description="discount in whole percent, 0 for none")),
        **subject_field,
        message=(
            str,
            Field(
                min_length=1, max_length=message_chars, description="the message text sent to the customer"
            ),
        ),
        rationale=(
            str,
            Field(default="", max_length=RATIONALE_CHARS, description="one sentence: why this action"),
        ),
    )
    model.channel_of = dict(pairs)
    return model


class _ChoiceSchema(instructor.OpenAISchema):
    """One of the ranked actions for one customer, by its number, and the message for it."""

    model_config = ConfigDict(extra="forbid")


# Bounds the grammar puts on what the model writes for a ranked choice: SmolLM2 otherwise rambles in
# the rationale or subject until max_tokens (each cut-off answer a fallback).
MESSAGE_CHARS = 400  # at most a channel's own limit (push 180, sms 306); the guardrails check it again
RATIONALE_CHARS = 160


@cache
def choice_model_for(k: int, message_chars: int = MESSAGE_CHARS, subject_chars: int = 80) -> type[BaseModel]:
    """The response model of a prompt that offers k ranked actions: `choice` is one of 1..k (a
    grammar-constrained model cannot answer outside the ranking; an endpoint without grammars is
    asked again by pydantic's Literal), then the subject (empty unless an email is offered), message
    and rationale, each bounded in length (the bounds become the grammar's)."""
    numbers = tuple(range(1, k + 1))
    # The ignores: a Literal built from a runtime tuple is not a static type (see _build_response_model).
    model = create_model(
        f"RankedChoice_{k}_{message_chars}_{subject_chars}",
        __base__=_ChoiceSchema,
        choice=(Literal[numbers], Field(description="the number of the ranked action you choose")),  # type: ignore[valid-type,arg-type]
        # required ("" for sms and push): left optional, SmolLM2 left it out of almost every email
        subject=(str, Field(max_length=subject_chars, description='email subject; "" for sms and push')),
        message=(
            str,
            Field(
                min_length=1, max_length=message_chars, description="the message text sent to the customer"
            ),
        ),
        rationale=(str, Field(max_length=RATIONALE_CHARS, description="one sentence: why this action")),
    )
    return check_response_models_once(model)


def response_model_for_prompt(
    ctx: CustomerContext, prompt: RenderedPrompt, ref: ReferenceData
) -> type[BaseModel]:
    """What the answer to this prompt must look like: a ranked choice when it offers a ranking (its
    text bounded by the offered channels' limits), else an action of the segment's bank."""
    if not prompt.choices:
        if prompt.offered:
            return response_model_for_offer(ctx.segment, prompt.offered, ref)
        return response_model_for(ctx.segment, ref)
    message, subject = _text_bounds([channel for _, channel, _ in prompt.choices], ref)
    return choice_model_for(len(prompt.choices), message, subject)


def as_proposal(answer: BaseModel, prompt: RenderedPrompt) -> Proposal:
    """The proposal an answer makes: a ranked choice becomes the action it names."""
    data = answer.model_dump()
    if prompt.choices:
        template_id, channel, discount = prompt.choices[int(data.pop("choice")) - 1]
        data.update(template_id=template_id, channel=channel, discount_pct=discount)
    if data["channel"] != "email":  # a subject is for email only (a ranked choice writes it first)
        data["subject"] = None
    return Proposal.model_validate(data)


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


@cache
def _answer_schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def proposal_key(
    settings: LLMSettings,
    ctx: CustomerContext,
    prompt: RenderedPrompt,
    ref: ReferenceData,
    response_model: type[BaseModel] | None = None,
) -> str:
    """The decision-cache key of one LLM proposal: the request, including the schema the answer must
    follow (`response_model`, when the caller has built it already)."""
    response_model = response_model or response_model_for_prompt(ctx, prompt, ref)
    return cache_key(
        model=settings.model,
        prompt_version=prompt.version,
        messages=prompt.messages(),
        fingerprint=settings.cache_fingerprint(),
        answer_schema=_answer_schema(response_model),
    )


class LLMClient:
    """`endpoint` is the base URL, or a callable that returns it (called once, on the first call the
    cache cannot answer: it may start the embedded model)."""

    def __init__(
        self,
        settings: LLMSettings,
        *,
        endpoint: str | Callable[[], str | None] | None = None,
        cache: DecisionCache | None = None,
        ref: ReferenceData,
    ) -> None:
        self.settings = settings
        self.ref = ref
        self.cache = cache
        self._endpoint = endpoint
        self._client: Any = None
        self.calls = 0
        self.flow: Flow | None = None  # the last propose_many's congestion window and breaker
        self._said_stopped = False

    def _connect(self) -> Any:
        if self._client is not None:
            return self._client
        s = self.settings
        url = self._endpoint() if callable(self._endpoint) else self._endpoint
        key = s.api_key.get_secret_value() if s.api_key else "sk-no-key-needed"
        self.http = http_client(s)
        raw = openai.AsyncOpenAI(
            base_url=url or s.base_url,
            api_key=key,
            timeout=s.timeout_s,
            max_retries=s.http_retries,
            http_client=self.http,
        )
        mode = INSTRUCTOR_MODES[s.resolved_instructor_mode]
        client = instructor.AsyncInstructor(
            client=raw, create=instructor.patch(create=post_as_built(raw), mode=mode), mode=mode
        )
        client.on("completion:kwargs", self._on_kwargs)
        client.on("completion:response", self._on_response)
        client.on("completion:error", self._on_error)
        client.on("parse:error", self._on_error)
        self._client = client
        return client

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
    async def propose(
        self, ctx: CustomerContext, prompt: RenderedPrompt, flow: Flow | None = None
    ) -> PolicyOutcome:
        """The cache's answer, else the model's: asked when `flow` (the congestion window) has room,
        not at all once its breaker has tripped (the outcome is then `llm_stopped`)."""
        s = self.settings
        cache = self.cache if s.cache else None
        response_model = response_model_for_prompt(ctx, prompt, self.ref)
        # hashing costs: only with a cache
        key = proposal_key(s, ctx, prompt, self.ref, response_model) if cache is not None else ""
        if cache is not None:
            hit = cache.get(key)
            if hit is not None:
                data, failure, attempts = hit
                cached = Proposal.model_validate(data) if data is not None else None
                return self._outcome(ctx, prompt, cached, failure, attempts, cached=True)
        if flow is None:
            return await self._ask(ctx, prompt, response_model, key, cache)
        ticket = await flow.acquire()
        if ticket is None:
            return self._outcome(ctx, prompt, None, STOPPED, [])
        out: PolicyOutcome | None = None
        t0 = time.perf_counter()
        try:
            out = await self._ask(ctx, prompt, response_model, key, cache)
            return out
        finally:
            failure = out.failure_reason if out is not None else "invalid_output"
            await flow.release(ticket, failure, time.perf_counter() - t0)

    async def _ask(
        self,
        ctx: CustomerContext,
        prompt: RenderedPrompt,
        response_model: type[BaseModel],
        key: str,
        cache: DecisionCache | None,
    ) -> PolicyOutcome:
        s = self.settings
        messages = prompt.messages()
        client = self._connect()
        trail: list[dict[str, Any]] = []
        token = _trail.set(trail)
        try:
            result = await client.chat.completions.create(
                model=s.model,
                response_model=response_model,
                messages=messages,
                max_retries=s.reasks,  # instructor: reasks after the first attempt
                temperature=s.temperature,
                seed=s.seed,
                max_tokens=s.max_tokens,
            )
            proposal = as_proposal(result, prompt)
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
        return self._outcome(ctx, prompt, proposal, reason, attempts)

    def _outcome(
        self,
        ctx: CustomerContext,
        prompt: RenderedPrompt,
        proposal: Proposal | None,
        failure: str | None,
        attempts: list[LLMAttempt],
        cached: bool = False,
    ) -> PolicyOutcome:
        return PolicyOutcome(
            customer_id=ctx.customer_id,
            proposal=proposal,
            failure_reason=failure,
            model=self.settings.model,
            prompt_version=prompt.version,
            attempts=attempts,
            cached=cached,
        )

    async def propose_many(
        self,
        items: Sequence[tuple[CustomerContext, RenderedPrompt]],
        on_done: Callable[[PolicyOutcome], None] | None = None,
    ) -> list[PolicyOutcome]:
        """One outcome per item; items whose requests are identical (the same prompt and schema:
        customers in the same situation) share one call, made once even when they arrive together.
        The call's attempts (tokens, latency) stay with the first: the others spent nothing."""
        flow = self.flow = Flow(self.settings.concurrency, timeout_s=self.settings.timeout_s)
        asked: dict[str, asyncio.Task[PolicyOutcome]] = {}

        async def ask(ctx: CustomerContext, prompt: RenderedPrompt) -> PolicyOutcome:
            out = await self.propose(ctx, prompt, flow)
            if flow.tripped and not self._said_stopped:
                self._said_stopped = True
                print(f"[llm] {flow.reason}", file=sys.stderr, flush=True)
            return out

        async def one(ctx: CustomerContext, prompt: RenderedPrompt) -> PolicyOutcome:
            key = proposal_key(self.settings, ctx, prompt, self.ref)
            first = key not in asked
            if first:
                asked[key] = asyncio.ensure_future(ask(ctx, prompt))
            shared = await asked[key]
            out = (
                shared
                if first
                else shared.model_copy(
                    update={"customer_id": ctx.customer_id, "cached": True, "attempts": []}
                )
            )
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
    "InstructorRetryException",
    "LLMClient",
    "as_proposal",
    "choice_model_for",
    "classify_failure",
    "response_model_for",
    "response_model_for_offer",
    "response_model_for_prompt",
]
