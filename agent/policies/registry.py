"""The policy registry: how each registered kind (core.policy_kinds) becomes a policy object.

A policy's file in `agent/policies/` holds the policy and its `build(inputs)`; one
`register(KIND, build)` line in `agent/policies/__init__.py` adds its kind (if core does not already
know it) and its builder. `build_policy` asks the registry, never a name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from agent.cache import DecisionCache
from core import policy_kinds
from core.config import RunConfig
from core.contracts import GuardrailSettings
from core.errors import UserError
from core.policy import Policy
from core.policy_kinds import PolicyKind, kind
from core.reference import ReferenceData


@dataclass(frozen=True)
class BuildInputs:
    """What a builder may use: the run's settings, the guardrail settings and reference data, the
    LLM endpoint and decision cache (LLM kinds), the warehouse and the cut-off of the touches a
    model may learn from (kinds that learn from the log)."""

    config: RunConfig
    guard: GuardrailSettings
    ref: ReferenceData
    endpoint: Any = None  # an agent.policies.llm.LLMEndpoint, which imports this module
    cache: DecisionCache | None = None
    con: duckdb.DuckDBPyConnection | None = None
    history_before: datetime | None = None

    def build(self, name: str) -> Policy:
        """Another registered policy from the same inputs (the LLM drafts on the learned ranking)."""
        return build(name, self)


Builder = Callable[[BuildInputs], Policy]
_builders: dict[str, Builder] = {}


def register(policy_kind: PolicyKind, builder: Builder) -> PolicyKind:
    """Add a policy: its kind (unless core registered that very kind) and how it is built."""
    if policy_kind.name in _builders:
        raise ValueError(f"a policy named {policy_kind.name!r} is already registered")
    if policy_kind.name not in policy_kinds.policy_modes():
        policy_kinds.register(policy_kind)
    elif kind(policy_kind.name) is not policy_kind:
        raise ValueError(f"a policy named {policy_kind.name!r} is already registered")
    _builders[policy_kind.name] = builder
    return policy_kind


def unregister(name: str) -> None:
    _builders.pop(name, None)
    policy_kinds.unregister(name)


def build(name: str, inputs: BuildInputs) -> Policy:
    if name not in _builders:
        raise UserError(f"no policy named {name!r} is registered (known: {', '.join(_builders)})")
    return _builders[name](inputs)


def learns_from_the_log(mode: str, prompt_version: str | None = None) -> bool:
    """Does this policy decide with a model trained on the logged touches? A kind that learns does,
    and so does a prompt version written on top of the learned ranking (templates that use
    `ranking`): an eval must score either only on touches after its training cut-off."""
    k = kind(mode)
    if k.learns_from_log:
        return True
    if k.prompted and prompt_version:
        from agent.prompts import prompt_variables

        return "ranking" in prompt_variables(prompt_version)
    return False
