"""THE decision pipeline, used by activate, plan, eval, prompt and next_best_action:

    contexts -> eligibility (guardrails) -> Policy.propose (rules | LLM | learned) -> guardrails
    (vet, clamp, re-render, fall back to the rules policy) -> Decision + GuardrailReport

Eligibility runs before any policy call, so no LLM token is spent on someone who cannot be
contacted. The pipeline never branches on which policy it holds: every policy implements
core.policy.Policy, and a failure inside one becomes a rules fallback inside the guardrails, never
an exception out of the run. This is the only module that imports both policies and guardrails.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime

import duckdb

from agent.cache import DecisionCache
from agent.policies import LLMEndpoint, RulesPolicy, build_policy
from agent.prompts import RenderedPrompt
from core.config import RunConfig
from core.contracts import (
    ContactEvent,
    CustomerContext,
    Decision,
    DecisionMeta,
    Eligibility,
    GuardrailReport,
    GuardrailSettings,
    PolicyOutcome,
)
from core.gc_passes import fewer_gc_passes
from core.policy import Policy, PolicyItem, Progress
from core.policy_kinds import kind
from core.reference import ReferenceData, load_reference
from guardrails.eligibility import check_eligibility
from guardrails.engine import finalize

Decided = tuple[Decision, GuardrailReport]
History = Mapping[str, Sequence[ContactEvent]]


def decision_id(as_of: datetime, customer_id: str, mode: str) -> str:
    """The id a decision carries through the guardrails: the run's as_of, the customer, the policy."""
    return hashlib.sha256(f"{as_of.isoformat()}|{customer_id}|{mode}".encode()).hexdigest()[:20]


def final_decision_id(decision: Decision, mode: str) -> str:
    """The id of a final decision: its as_of, customer and policy, and what it does (status, channel,
    template, discount, copy). A re-run with the same inputs gets the same id (so a destination sees
    the same decision once); a second, different action for the same customer and as_of gets its own."""
    action = [decision.status, decision.channel, decision.template_id, decision.discount_pct]
    copy = hashlib.sha256(f"{decision.subject}\x00{decision.message}".encode()).hexdigest()[:16]
    raw = f"{decision.as_of.isoformat()}|{decision.customer_id}|{mode}|{action}|{copy}"
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


class Pipeline:
    """One run's decisions: a policy, the guardrail settings and reference data, a run id and as_of."""

    def __init__(
        self,
        policy: Policy,
        *,
        guard: GuardrailSettings,
        ref: ReferenceData,
        run_id: str,
        as_of: datetime,
        fallback: RulesPolicy | None = None,
    ) -> None:
        self.policy, self.guard, self.ref = policy, guard, ref
        self.run_id, self.as_of = run_id, as_of
        self.fallback = fallback or (policy if isinstance(policy, RulesPolicy) else RulesPolicy(guard, ref))

    @classmethod
    def from_config(
        cls,
        config: RunConfig,
        *,
        run_id: str,
        as_of: datetime,
        ref: ReferenceData,
        mode: str | None = None,
        endpoint: LLMEndpoint | None = None,
        cache: DecisionCache | None = None,
        con: duckdb.DuckDBPyConnection | None = None,
        history_before: datetime | None = None,
    ) -> Pipeline:
        """The run's pipeline from its settings: the guardrail settings they carry and the policy
        `mode` (default `config.mode`) names, built by its registered builder (agent.policies). A
        policy that learns reads the touches of `con` logged before `history_before` (default `as_of`)."""
        guard = config.guardrails()
        policy = build_policy(
            config,
            guard=guard,
            ref=ref,
            endpoint=endpoint,
            cache=cache,
            mode=mode,
            con=con,
            history_before=history_before or as_of,
        )
        return cls(policy, guard=guard, ref=ref, run_id=run_id, as_of=as_of)

    def with_policy(self, policy: Policy) -> Pipeline:
        """The same run deciding with another policy (a ramp wraps the built one)."""
        return Pipeline(policy, guard=self.guard, ref=self.ref, run_id=self.run_id, as_of=self.as_of)

    def eligibility(self, ctx: CustomerContext, history: History) -> Eligibility:
        return check_eligibility(
            ctx, history.get(ctx.customer_id, ()), as_of=self.as_of, settings=self.guard, ref=self.ref
        )

    def _meta(self, ctx: CustomerContext) -> DecisionMeta:
        p = self.policy
        return DecisionMeta(
            decision_id=decision_id(self.as_of, ctx.customer_id, p.name),
            run_id=self.run_id,
            as_of=self.as_of,
            goal=self.guard.goal,
            policy=p.name,
            model=p.model,
            prompt_version=p.prompt_version,
        )

    async def decide_async(
        self, contexts: Sequence[CustomerContext], history: History, progress: Progress | None = None
    ) -> list[Decided]:
        eligibilities = [self.eligibility(ctx, history) for ctx in contexts]
        todo: list[PolicyItem] = [
            (c, e) for c, e in zip(contexts, eligibilities, strict=True) if e.needs_proposal
        ]
        if progress and len(contexts) > len(todo):
            progress(len(contexts) - len(todo))
        outcomes = await self.policy.propose(todo, progress) if todo else []
        by_customer: dict[str, PolicyOutcome] = {o.customer_id: o for o in outcomes}
        out: list[Decided] = []
        for ctx, elig in zip(contexts, eligibilities, strict=True):
            decision, report = finalize(
                ctx,
                by_customer.get(ctx.customer_id),
                eligibility=elig,
                meta=self._meta(ctx),
                settings=self.guard,
                ref=self.ref,
                fallback=self.fallback,
            )
            did = final_decision_id(decision, self.policy.name)
            out.append(
                (
                    decision.model_copy(update={"decision_id": did}),
                    report.model_copy(update={"decision_id": did}),
                )
            )
        return out

    def decide(
        self, contexts: Sequence[CustomerContext], history: History, progress: Progress | None = None
    ) -> list[Decided]:
        with fewer_gc_passes():  # see core/gc_passes.py for the measurement
            return asyncio.run(self.decide_async(contexts, history, progress))


def customer_prompt(
    config: RunConfig, con: duckdb.DuckDBPyConnection, ctx: CustomerContext, *, run_id: str
) -> tuple[Eligibility, RenderedPrompt]:
    """The customer's eligibility and the LLM prompt their decision is asked with (config's prompt
    version), from today's context: what the model sees, or would see were the customer eligible
    (their preferred channel then stands for the reachable ones)."""
    from agent.context import data_as_of, load_contact_history, reference_for
    from agent.policies import LLMPolicy

    as_of = config.as_of or data_as_of(con)
    pipe = Pipeline.from_config(config, run_id=run_id, as_of=as_of, ref=reference_for(con), con=con)
    if not isinstance(pipe.policy, LLMPolicy):
        raise TypeError(f"a prompt is rendered by MODE=llm, not {config.mode}")
    elig = pipe.eligibility(ctx, load_contact_history(con))
    channels = elig.allowed_channels or [ctx.preferred_channel]
    ranking = pipe.policy.rankings([(ctx, elig.model_copy(update={"allowed_channels": channels}))])[0]
    return elig, pipe.policy.prompt(ctx, channels, ranking)


def recheck_eligibility(
    contexts: Sequence[CustomerContext],
    history: History,
    *,
    guard: GuardrailSettings,
    ref: ReferenceData,
    as_of: datetime,
) -> dict[str, Eligibility]:
    """Eligibility again, as of `as_of`, for decisions made earlier and sent now (deferred sends):
    the same registry of checks as a decision (holdout, global suppression, consent, suppression
    window, frequency caps), except quiet hours, whose end is the very time the send waited for."""
    settings = guard.model_copy(update={"enforce_quiet_hours": False})
    return {
        ctx.customer_id: check_eligibility(
            ctx, history.get(ctx.customer_id, ()), as_of=as_of, settings=settings, ref=ref
        )
        for ctx in contexts
    }


def decide(
    contexts: Sequence[CustomerContext],
    history: History,
    config: RunConfig,
    *,
    run_id: str,
    as_of: datetime,
    ref: ReferenceData | None = None,
    endpoint: LLMEndpoint | None = None,
    cache: DecisionCache | None = None,
    progress: Progress | None = None,
    mode: str | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    history_before: datetime | None = None,
) -> tuple[list[Decided], dict[str, int]]:
    """Decide for every context with the policy `mode` (default `config.mode`) names. Returns the decisions and the
    policy's call stats (LLM calls, cache hits). An embedded model started here is stopped here;
    pass `endpoint` to share one across calls. Learned mode trains on (or reuses the model of) the
    warehouse `con`'s touches before `history_before` (default `as_of`)."""
    mode = mode or config.mode
    own_endpoint = endpoint is None and kind(mode).needs_endpoint
    endpoint = endpoint or (LLMEndpoint(config.llm) if own_endpoint else None)
    try:
        pipe = Pipeline.from_config(
            config,
            run_id=run_id,
            as_of=as_of,
            ref=ref or load_reference(),
            mode=mode,
            endpoint=endpoint,
            cache=cache,
            con=con,
            history_before=history_before,
        )
        decided = pipe.decide(contexts, history, progress)
        return decided, {"llm_calls": 0, "cache_hits": 0} | pipe.policy.stats()
    finally:
        if own_endpoint and endpoint is not None:
            endpoint.close()
