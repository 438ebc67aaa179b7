"""Policy kinds: what the house asks of a policy without holding one.

Each policy has one `PolicyKind`, registered once: its name (`MODE=`), whether a run can use it,
whether it calls an LLM endpoint, decides from a prompt version, learns from the logged touches,
runs on Spark, and its settings section. Settings, contracts and consumers ask the kind
(`kind(mode).needs_endpoint`), never compare the name. The mode types (`Mode`, `PolicyMode`,
`PolicyName`) validate against this registry, so a registered kind is a valid `MODE=` at once.

How a policy is built lives with the policy in `agent/policies/` (core imports nothing above it);
`agent.policies.register(KIND, build)` is the one line that adds both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema


@dataclass(frozen=True)
class PolicyKind:
    """What one policy is, as the rest of the house asks about it."""

    name: str  # MODE=<name>; written into each decision's `policy`
    runs: bool = True  # a run (activate, plan, an eval's candidate) may use it; False: evals only
    needs_endpoint: bool = False  # calls an LLM endpoint (a run serves the embedded model if none is set)
    prompted: bool = False  # decides from a prompt version, part of its identity (`llm:v1@model`)
    learns_from_log: bool = False  # decides with a model trained on the logged touches
    on_spark: bool = False  # NBA_DECIDE_ON=spark can run it over partitions of customer 360
    reference: bool = False  # the uniform-random reference every eval scores beside its policies
    is_fallback: bool = False  # what the guardrails fall back to when a proposal fails
    baseline: bool = True  # an eval may name it as its BASELINE
    section: str | None = None  # its settings section in the run configuration (NBA_<SECTION>__*)

    @property
    def fallback_name(self) -> str:
        """The `policy` of a decision the fallback made in its place: `llm->rules`."""
        return self.name if self.is_fallback else f"{self.name}->{fallback().name}"


_registered: dict[str, PolicyKind] = {}
_names: dict[str, tuple[str, ...]] = {}  # the lists below, computed once per change of the registry


def register(kind: PolicyKind) -> PolicyKind:
    """Add a kind; its name must be new. Registration order is the order names are listed in."""
    if kind.name in _registered:
        raise ValueError(f"a policy named {kind.name!r} is already registered")
    if "->" in kind.name or ":" in kind.name or "@" in kind.name:
        raise ValueError(f"a policy name cannot contain '->', ':' or '@': {kind.name!r}")
    _registered[kind.name] = kind
    _names.clear()
    return kind


def unregister(name: str) -> None:
    _registered.pop(name, None)
    _names.clear()


def kinds() -> tuple[PolicyKind, ...]:
    return tuple(_registered.values())


def kind(name: str) -> PolicyKind:
    """The kind of a mode or of a decision's policy (`llm->rules` is the LLM's)."""
    return _registered[name.split("->", 1)[0]]


def fallback() -> PolicyKind:
    return next(k for k in _registered.values() if k.is_fallback)


def reference() -> PolicyKind:
    """The uniform-random reference of every eval."""
    return next(k for k in _registered.values() if k.reference)


def prompted() -> PolicyKind:
    """The kind a prompt version (v1, v3, ...) belongs to, as an eval's baseline."""
    return next(k for k in _registered.values() if k.prompted)


def run_modes() -> tuple[str, ...]:
    """What MODE= may name."""
    if "run" not in _names:
        _names["run"] = tuple(k.name for k in _registered.values() if k.runs)
    return _names["run"]


def policy_modes() -> tuple[str, ...]:
    """What may decide (the run modes and the evals' reference)."""
    return tuple(_registered)


def policy_names() -> tuple[str, ...]:
    """What a decision's `policy` may say: a kind, or a kind the fallback stood in for."""
    if "policy" not in _names:
        fell = (k.fallback_name for k in _registered.values() if not k.is_fallback)
        _names["policy"] = (*_registered, *fell)
    return _names["policy"]


def fell_back(policy: str) -> bool:
    """Did the fallback decide in place of the policy a decision names (`llm->rules`)?"""
    return policy != kind(policy).name


def parse_identity(identity: str) -> tuple[PolicyKind | None, str | None]:
    """The kind and prompt version an identity (core.policy.policy_identity) names:
    `llm:v1@model` -> (llm, v1); None for a kind that is not registered."""
    head = identity.split("@", 1)[0]
    name, _, version = head.partition(":")
    return _registered.get(name), version or None


@dataclass(frozen=True)
class _OneOf:
    """Annotated metadata: a string that must be one of `names()` at validation time (a kind
    registered later is valid from then on). The error reads as a Literal's would."""

    names: Callable[[], tuple[str, ...]]

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.validate, core_schema.str_schema())

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "enum": list(self.names())}

    def validate(self, value: str) -> str:
        valid = self.names()
        if value not in valid:
            quoted = [repr(v) for v in valid]
            expected = " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)
            raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
        return value

    def choices(self) -> tuple[str, ...]:
        return self.names()


Mode = Annotated[str, _OneOf(run_modes)]  # what a run can use
PolicyMode = Annotated[str, _OneOf(policy_modes)]  # + the uniform-random reference of evals
PolicyName = Annotated[str, _OneOf(policy_names)]  # + `<kind>-><fallback>`

# the built-in kinds; their builders are registered beside them in agent/policies/__init__.py
RULES = register(PolicyKind("rules", on_spark=True, is_fallback=True))
RANDOM = register(PolicyKind("random", runs=False, reference=True))
LEARNED = register(PolicyKind("learned", learns_from_log=True, on_spark=True, section="learned"))
LLM = register(PolicyKind("llm", needs_endpoint=True, prompted=True, baseline=False, section="llm"))
