"""What a guardrail check is: a name, a short label, whether its failure suppresses the customer, its
run, and the sentence that explains one logged entry of it. The rest of the house asks the check."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import ClassVar, Generic, TypeVar

from core.contracts import (
    ActionSpec,
    Arm,
    ContactEvent,
    CustomerContext,
    Eligibility,
    GuardrailCheck,
    GuardrailSettings,
    Proposal,
)
from core.reference import ReferenceData
from guardrails.checks.words import Setting
from guardrails.clock import contact_times
from guardrails.message_checker import Finding

entry = GuardrailCheck.of  # one logged entry: name, verdict, before, after, reason


class Check:
    """One guardrail check. `name` is what the GuardrailReport logs; `label` is its short form in
    tables and counts; `blocks` says whether its failure suppresses the customer."""

    name: ClassVar[str]
    label: ClassVar[str]
    blocks: ClassVar[bool] = False

    def explain(self, c: GuardrailCheck, s: Setting) -> str:
        """One logged entry of this check, in words."""
        return plain(c)


def plain(c: GuardrailCheck) -> str:
    """A logged entry in the fewest words: its name, verdict and reason."""
    return f"{c.name}: {c.verdict}" + (f" ({c.reason})" if c.reason else "")


@dataclass
class Screen:
    """One customer's eligibility as the checks find it, in registry order: each check reads what
    the checks before it found (consent before the caps, the open channels before quiet hours)."""

    ctx: CustomerContext
    history: Sequence[ContactEvent]
    as_of: datetime
    settings: GuardrailSettings
    ref: ReferenceData
    reasons: list[str] = field(default_factory=list)
    blocked: bool = False
    arm: Arm = "treatment"
    holdout_reason: str = ""
    consented: list[str] = field(default_factory=list)
    open_channels: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)
    deferred: dict[str, datetime] = field(default_factory=dict)
    defer_until: datetime | None = None  # set when every allowed channel is in its quiet hours

    @cached_property
    def contacts(self) -> set[tuple[str, datetime]]:
        """(channel, UTC time) of every contact already made."""
        return contact_times(self.ctx, self.history)


class EligibilityCheck(Check):
    """Step 1: runs for every customer before any policy is asked; `code` is the decision's reason
    code when a blocking check fails."""

    code: ClassVar[str] = ""

    def run(self, s: Screen) -> GuardrailCheck:
        raise NotImplementedError


@dataclass
class Vetting:
    """One proposal as the checks vet it, in registry order; `failure` set stops the vetting."""

    ctx: CustomerContext
    proposal: Proposal
    eligibility: Eligibility
    settings: GuardrailSettings
    ref: ReferenceData
    checks: list[GuardrailCheck] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    failure: str = ""
    action: ActionSpec | None = None
    discount: float = 0.0
    subject: str | None = None
    message: str = ""
    rationale: str = ""
    findings: tuple[Finding, ...] = ()  # what the message checks found in the draft
    approved: tuple[str | None, str] = (None, "")  # the approved copy for this customer
    ok: bool = False  # every check passed or was fixed

    @property
    def channel(self) -> str:
        return self.proposal.channel

    @property
    def template_id(self) -> str:
        return self.proposal.template_id


class ProposalCheck(Check):
    """Steps 2-4: runs on a proposal; returns its logged entry, or None when it has nothing to say
    (a re-render when the draft passed). It sets `Vetting.failure` when the proposal cannot stand."""

    def run(self, v: Vetting) -> GuardrailCheck | None:
        raise NotImplementedError


C = TypeVar("C", bound=Check)


class Registry(Generic[C]):
    """The checks of one stage in the order they run. A new check is one class and one line in
    `guardrails/checks/__init__.py`; `register` adds one from outside (a plugin, a test)."""

    def __init__(self, *checks: C) -> None:
        self._checks: tuple[C, ...] = checks  # replaced, never mutated: a run iterates a stable tuple
        _index.update({c.name: c for c in checks})

    def __iter__(self) -> Iterator[C]:
        return iter(self._checks)

    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self._checks)

    def register(self, check: C) -> C:
        """Add `check` after the others (its name must be new)."""
        if check.name in _index:
            raise ValueError(f"a guardrail check named {check.name!r} is already registered")
        self._checks = (*self._checks, check)
        _index[check.name] = check
        return check

    def unregister(self, name: str) -> None:
        self._checks = tuple(c for c in self._checks if c.name != name)
        _index.pop(name, None)


_index: dict[str, Check] = {}  # every registered check by name, whatever its stage


def find(name: str) -> Check | None:
    """The registered check of that name (None for a name no check logs, e.g. an old report's)."""
    return _index.get(name)
