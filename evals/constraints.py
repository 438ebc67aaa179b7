"""What each constraint costs: the inputs of an eval's decisions with one constraint lifted.

The oracle is the best action by the truth among those the uniform-random reference may take, and
that reference's support is exactly what eligibility and the discount cap allow (evals.harness).
Deciding the reference again, through the same pipeline, with one constraint lifted gives the set
without it; the oracle over that set, set against the oracle over the real one, is what the
constraint costs. Lifting is for measuring only: no decision that is sent ever has a constraint
lifted.

- `sms_frequency_cap`: the SMS channel's contacts-per-7-days limit of the reference data
  (`channel_limits.max_per_7d`) no longer applies; every other channel's cap still does.
- `discount_cap`: the run's cap no longer applies; each template's banked maximum still does.
- `consent`: every channel counts as consented; the global suppression list still applies.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

from core.contracts import CustomerContext
from core.reference import ReferenceData

Constraint = Literal["sms_frequency_cap", "discount_cap", "consent"]
CONSTRAINTS: tuple[Constraint, ...] = ("sms_frequency_cap", "discount_cap", "consent")
CONSTRAINT_LABELS: dict[Constraint, str] = {
    "sms_frequency_cap": "SMS frequency cap",
    "discount_cap": "discount cap",
    "consent": "consent",
}
NO_CAP = 100.0  # percent: with the run's cap lifted, the action bank's per-template maximum governs
UNLIMITED_PER_7D = 10**6


def lifted_cap(cap: float, constraint: Constraint | None) -> float:
    """The discount cap a decision runs under with `constraint` lifted."""
    return NO_CAP if constraint == "discount_cap" else cap


def lifted_contexts(
    contexts: Sequence[CustomerContext], constraint: Constraint | None
) -> list[CustomerContext]:
    """The customers as a decision sees them with `constraint` lifted (consent: every channel)."""
    if constraint != "consent":
        return list(contexts)
    granted = {"email": True, "sms": True, "push": True}
    return [c.model_copy(update={"consent": c.consent.model_copy(update=granted)}) for c in contexts]


def lifted_reference(ref: ReferenceData, constraint: Constraint | None) -> ReferenceData:
    """The reference data a decision runs under with `constraint` lifted (the SMS frequency cap:
    the SMS channel's limit per 7 days removed)."""
    if constraint != "sms_frequency_cap" or "sms" not in ref.channel_limits:
        return ref
    sms = ref.channel_limits["sms"].model_copy(update={"max_per_7d": UNLIMITED_PER_7D})
    return dataclasses.replace(ref, channel_limits={**ref.channel_limits, "sms": sms})
