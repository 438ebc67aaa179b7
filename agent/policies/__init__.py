"""The policies behind the one `Policy` seam (core.policy). Each is a file here with its policy and
its `build`, and one `register` line below: the kind (core.policy_kinds) names it and says what it
needs; `build_policy` is the one place a mode name becomes a policy object."""

from __future__ import annotations

from datetime import datetime

import duckdb

from agent.cache import DecisionCache
from agent.policies import learned, llm, random, rules
from agent.policies.llm import LLMEndpoint, LLMPolicy
from agent.policies.random import RandomPolicy
from agent.policies.registry import BuildInputs, build, learns_from_the_log, register
from agent.policies.rules import RulesPolicy
from core.config import RunConfig
from core.contracts import GuardrailSettings
from core.errors import UserError
from core.policy import Policy
from core.policy_kinds import LEARNED, LLM, RANDOM, RULES, parse_identity
from core.reference import ReferenceData

__all__ = [
    "BuildInputs",
    "LLMEndpoint",
    "LLMPolicy",
    "RandomPolicy",
    "RulesPolicy",
    "build_policy",
    "learns_from_the_log",
    "policy_for_identity",
    "register",
]

register(RULES, rules.build)
register(RANDOM, random.build)
register(LEARNED, learned.build)
register(LLM, llm.build)


def build_policy(
    config: RunConfig,
    *,
    guard: GuardrailSettings,
    ref: ReferenceData,
    endpoint: LLMEndpoint | None = None,
    cache: DecisionCache | None = None,
    mode: str | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    history_before: datetime | None = None,
) -> Policy:
    """The policy `mode` (default `config.mode`) names, built by its registered builder from these
    inputs (agent.policies.registry.BuildInputs says which kind uses what)."""
    inputs = BuildInputs(config, guard, ref, endpoint, cache, con, history_before)
    return build(mode or config.mode, inputs)


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
    kind, version = parse_identity(identity)
    if kind is None or not kind.runs:
        raise UserError(f"the policy in place ({identity}) cannot be rebuilt: FORCE=1, or make it rules")
    if kind.prompted and version:
        config = config.model_copy(update={"prompt_version": version})
    return build_policy(
        config, guard=guard, ref=ref, endpoint=endpoint, mode=kind.name, con=con, history_before=as_of
    )
