"""Context -> eligibility -> policy (rules or LLM) -> guardrails -> Decision + GuardrailReport.

Eligibility runs before any LLM call, so no token is spent on someone who cannot be contacted.
The LLM path is fully async with bounded concurrency; its failures become rules fallbacks inside
the guardrails, never exceptions out of the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.cache import DecisionCache
from agent.contracts import (
    SEGMENTS,
    ContactEvent,
    CustomerContext,
    Decision,
    DecisionMeta,
    Goal,
    GuardrailReport,
    Mode,
)
from agent.llm import LLMClient, ProposalOutcome, proposal_key
from agent.prompts import RenderedPrompt, render_prompt
from agent.reference import ReferenceData, load_reference
from agent.settings import LLMSettings
from guardrails.eligibility import Eligibility, check_eligibility
from guardrails.engine import finalize
from guardrails.rules import RulesPolicy
from guardrails.settings import GuardrailSettings

Decided = tuple[Decision, GuardrailReport]


class RunSettings(BaseModel):
    """Everything that determines a run's decisions. Same settings + same data -> same decisions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    as_of: datetime
    mode: Mode = "rules"
    segment: str = "all"
    goal: Goal = "90d_clv"
    discount_cap: float = Field(default=5.0, ge=0, le=100)
    suppress_hours: float = Field(default=24.0, ge=0)
    prompt_version: str = "v1"
    global_holdout_pct: float = Field(default=5.0, ge=0, le=100)
    segment_holdout_pct: float = Field(default=10.0, ge=0, le=100)

    @field_validator("as_of")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)

    @field_validator("segment")
    @classmethod
    def _segment(cls, v: str) -> str:
        if v != "all" and v not in SEGMENTS:
            raise ValueError(f"unknown segment {v!r}; valid: all, {', '.join(SEGMENTS)}")
        return v

    def guardrails(self) -> GuardrailSettings:
        return GuardrailSettings(
            goal=self.goal,
            discount_cap=self.discount_cap,
            suppress_hours=self.suppress_hours,
            global_holdout_pct=self.global_holdout_pct,
            segment_holdout_pct=self.segment_holdout_pct,
        )


def decision_id(as_of: datetime, customer_id: str, mode: str) -> str:
    """Stable over re-runs of the same day: the run date, the customer and the policy mode."""
    return hashlib.sha256(f"{as_of.date().isoformat()}|{customer_id}|{mode}".encode()).hexdigest()[:20]


@contextlib.contextmanager
def llm_endpoint(settings: LLMSettings) -> Iterator[str | None]:
    """Yield the base URL to call: the configured endpoint, or the embedded model served for this run."""
    if settings.embedded:
        from agent import local_llm

        with local_llm.serve(settings) as url:
            yield url
    else:
        yield settings.base_url


class Pipeline:
    def __init__(self, settings: RunSettings, *, ref: ReferenceData | None = None) -> None:
        self.settings = settings
        self.ref = ref or load_reference()
        self.guard = settings.guardrails()
        self.rules = RulesPolicy()

    def _meta(
        self, ctx: CustomerContext, *, policy: str, model: str | None = None, attempts: list | None = None
    ) -> DecisionMeta:
        s = self.settings
        return DecisionMeta(
            decision_id=decision_id(s.as_of, ctx.customer_id, s.mode),
            run_id=s.run_id,
            as_of=s.as_of,
            goal=s.goal,
            policy=policy,  # type: ignore[arg-type]
            model=model,
            prompt_version=s.prompt_version if policy == "llm" else None,
            attempts=attempts or [],
        )

    def eligibility(self, ctx: CustomerContext, history: Mapping[str, Sequence[ContactEvent]]) -> Eligibility:
        return check_eligibility(
            ctx,
            history.get(ctx.customer_id, ()),
            as_of=self.settings.as_of,
            settings=self.guard,
            ref=self.ref,
        )

    def decide_rules(
        self,
        contexts: Sequence[CustomerContext],
        history: Mapping[str, Sequence[ContactEvent]],
        progress: Callable[[int], None] | None = None,
    ) -> list[Decided]:
        out: list[Decided] = []
        for ctx in contexts:
            elig = self.eligibility(ctx, history)
            proposal = None
            if elig.needs_proposal:
                proposal = self.rules.propose(ctx, elig.allowed_channels, settings=self.guard, ref=self.ref)
            out.append(
                finalize(
                    ctx,
                    proposal,
                    eligibility=elig,
                    meta=self._meta(ctx, policy="rules"),
                    settings=self.guard,
                    ref=self.ref,
                    rules=self.rules,
                )
            )
            if progress:
                progress(1)
        return out

    def prompts_for(
        self, contexts: Sequence[CustomerContext], eligibilities: Sequence[Eligibility]
    ) -> list[tuple[CustomerContext, RenderedPrompt]]:
        s = self.settings
        return [
            (
                ctx,
                render_prompt(
                    ctx,
                    version=s.prompt_version,
                    ref=self.ref,
                    allowed_channels=e.allowed_channels,
                    goal=s.goal,
                    discount_cap=s.discount_cap,
                ),
            )
            for ctx, e in zip(contexts, eligibilities, strict=True)
            if e.needs_proposal
        ]

    def all_cached(
        self,
        contexts: Sequence[CustomerContext],
        history: Mapping[str, Sequence[ContactEvent]],
        llm_settings: LLMSettings,
        cache: DecisionCache,
    ) -> bool:
        """True when every proposal this run needs is already in the cache (no model server needed)."""
        todo = self.prompts_for(contexts, [self.eligibility(c, history) for c in contexts])
        return all(cache.contains(proposal_key(llm_settings, c, p)) for c, p in todo)

    async def decide_llm(
        self,
        contexts: Sequence[CustomerContext],
        history: Mapping[str, Sequence[ContactEvent]],
        client: LLMClient,
        progress: Callable[[int], None] | None = None,
    ) -> list[Decided]:
        eligibilities = [self.eligibility(ctx, history) for ctx in contexts]
        # Customers with the same shared prompt prefix (segment, reachable channels) one after another:
        # the server's slots then reuse it from their cache. Outcomes are matched back by customer.
        todo = sorted(self.prompts_for(contexts, eligibilities), key=lambda item: item[1].system)
        ineligible = len(contexts) - len(todo)
        if progress and ineligible:
            progress(ineligible)
        outcomes = await client.propose_many(todo, on_done=(lambda _o: progress(1)) if progress else None)
        by_customer: dict[str, ProposalOutcome] = {o.customer_id: o for o in outcomes}
        model = client.settings.model
        out: list[Decided] = []
        for ctx, elig in zip(contexts, eligibilities, strict=True):
            o = by_customer.get(ctx.customer_id)
            meta = self._meta(ctx, policy="llm", model=model, attempts=o.attempts if o else [])
            out.append(
                finalize(
                    ctx,
                    o.proposal if o else None,
                    eligibility=elig,
                    meta=meta,
                    settings=self.guard,
                    ref=self.ref,
                    failure_reason=o.failure_reason if o else None,
                    rules=self.rules,
                )
            )
        return out


def decide(
    contexts: Sequence[CustomerContext],
    history: Mapping[str, Sequence[ContactEvent]],
    settings: RunSettings,
    *,
    llm_settings: LLMSettings | None = None,
    base_url: str | None = None,
    cache: DecisionCache | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Decided], dict[str, int]]:
    """Decide for every context. Returns the decisions and LLM call stats (calls, cache hits)."""
    pipe = Pipeline(settings)
    if settings.mode == "rules":
        return pipe.decide_rules(contexts, history, progress), {"llm_calls": 0, "cache_hits": 0}
    llm: LLMSettings = llm_settings or LLMSettings.from_env()
    cache = cache if cache is not None else (DecisionCache() if llm.cache else None)

    async def run(url: str | None, cfg: LLMSettings) -> tuple[list[Decided], dict[str, int]]:
        client = LLMClient(cfg, base_url=url, cache=cache, ref=pipe.ref)
        try:
            decided = await pipe.decide_llm(contexts, history, client, progress)
        finally:
            await client.aclose()
        return decided, {"llm_calls": client.calls, "cache_hits": cache.hits if cache else 0}

    if base_url is not None:
        return asyncio.run(run(base_url, llm))
    needs_server = llm.embedded and not (
        cache is not None and llm.cache and pipe.all_cached(contexts, history, llm, cache)
    )
    if not needs_server:
        # Embedded and fully cached: no server is started and a closed local port stands in for it.
        return asyncio.run(run(llm.base_url or ("http://127.0.0.1:9/v1" if llm.embedded else None), llm))
    with llm_endpoint(llm) as url:
        return asyncio.run(run(url, llm))
