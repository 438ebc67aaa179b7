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

__all__ = ["LLMEndpoint", "LLMPolicy", "RandomPolicy", "RulesPolicy", "build_policy"]


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
        return LLMPolicy(
            llm,
            guard=guard,
            prompt_version=config.prompt_version,
            ref=ref,
            endpoint=endpoint or LLMEndpoint(llm),
            cache=cache if cache is not None else (DecisionCache() if llm.cache else None),
        )
    return RulesPolicy(guard, ref)
