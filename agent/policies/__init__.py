"""The policies behind the one `Policy` seam (core.policy): rules, LLM (and learned). `build_policy`
is the one place a mode name becomes a policy object."""

from __future__ import annotations

from datetime import datetime

import duckdb

from agent.cache import DecisionCache
from agent.policies.llm import LLMEndpoint, LLMPolicy
from agent.policies.random import RandomPolicy
from agent.policies.rules import RulesPolicy
from core.config import RunConfig
from core.contracts import GuardrailSettings, PolicyMode
from core.errors import UserError
from core.policy import Policy
from core.reference import ReferenceData

__all__ = [
    "LLMEndpoint",
    "LLMPolicy",
    "RandomPolicy",
    "RulesPolicy",
    "build_policy",
    "learns_from_the_log",
    "policy_for_identity",
]


def learns_from_the_log(mode: PolicyMode, prompt_version: str | None = None) -> bool:
    """Does this policy decide with a model trained on the logged touches? The learned policy does,
    and so does an LLM prompt version written on top of its ranking (templates that use `ranking`):
    an eval must score either only on touches after its training cut-off."""
    if mode == "learned":
        return True
    if mode == "llm" and prompt_version:
        from agent.prompts import prompt_variables

        return "ranking" in prompt_variables(prompt_version)
    return False


def build_policy(
    config: RunConfig,
    *,
    guard: GuardrailSettings,
    ref: ReferenceData,
    endpoint: LLMEndpoint | None = None,
    cache: DecisionCache | None = None,
    mode: PolicyMode | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    history_before: datetime | None = None,
) -> Policy:
    """The policy `mode` (default `config.mode`) names. LLM mode uses `endpoint` (one per command, so
    policies share a server) and the decision cache (`NBA_LLM__CACHE`). Learned mode reads (or
    trains) its model from the warehouse `con`, on the touches logged before `history_before`."""
    mode = mode or config.mode
    if mode == "random":
        return RandomPolicy(guard, ref)
    if mode == "learned":
        from agent.policies.learned import LearnedPolicy, model_for

        if con is None:
            raise UserError("MODE=learned needs the warehouse (its logged touches train the model)")
        trained = model_for(con, guard.goal, before=history_before, settings=config.learned)
        return LearnedPolicy(trained, guard=guard, ref=ref, settings=config.learned)
    if mode == "llm":
        llm = config.llm
        ranker = None
        if learns_from_the_log("llm", config.prompt_version):  # written on top of the learned ranking
            ranker = build_policy(
                config, guard=guard, ref=ref, mode="learned", con=con, history_before=history_before
            )
        return LLMPolicy(
            llm,
            guard=guard,
            prompt_version=config.prompt_version,
            ref=ref,
            endpoint=endpoint or LLMEndpoint(llm),
            cache=cache if cache is not None else (DecisionCache() if llm.cache else None),
            ranker=ranker,  # type: ignore[arg-type]
        )
    return RulesPolicy(guard, ref)


def policy_for_identity(
    identity: str,
    config: RunConfig,
    *,
    guard: GuardrailSettings,
    ref: ReferenceData,
    endpoint: LLMEndpoint | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    as_of: datetime | None = None,
) -> Policy:
    """The policy an identity (core.policy.policy_identity) names, with this run's settings: what a
    ramp runs beside its candidate as the policy in place. `llm:v3@model` keeps the run's endpoint."""
    head = identity.split("@", 1)[0]
    mode, _, version = head.partition(":")
    if mode not in ("rules", "learned", "llm"):
        raise UserError(f"the policy in place ({identity}) cannot be rebuilt: FORCE=1, or make it rules")
    if mode == "llm" and version:
        config = config.model_copy(update={"prompt_version": version})
    return build_policy(
        config,
        guard=guard,
        ref=ref,
        endpoint=endpoint,
        mode=mode,  # type: ignore[arg-type]
        con=con,
        history_before=as_of,
    )
