"""Step 1, before any policy or LLM call: may this customer be contacted now, and on which channels?

The checks themselves live in `guardrails/checks/`, in the order `ELIGIBILITY` registers them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from core.contracts import ContactEvent, CustomerContext, Eligibility, GuardrailCheck, GuardrailSettings
from core.reference import ReferenceData
from guardrails.checks import ELIGIBILITY, Screen
from guardrails.clock import as_utc

__all__ = ["Eligibility", "check_eligibility"]


def check_eligibility(
    ctx: CustomerContext,
    history: Sequence[ContactEvent],
    *,
    as_of: datetime,
    settings: GuardrailSettings,
    ref: ReferenceData,
) -> Eligibility:
    """Every eligibility check, each logged. Status precedence: suppressed > holdout > deferred >
    send, so the holdout arm holds exactly the customers who would otherwise have been contacted."""
    screen = Screen(ctx=ctx, history=history, as_of=as_utc(as_of), settings=settings, ref=ref)
    checks: list[GuardrailCheck] = []
    for check in ELIGIBILITY:
        found = check.run(screen)
        checks.append(found)
        if check.blocks and found.verdict == "failed":
            screen.blocked = True
            screen.reasons.append(check.code)
    return _verdict(screen, checks)


def _verdict(s: Screen, checks: list[GuardrailCheck]) -> Eligibility:
    allowed, deferred, defer_until = s.allowed, s.deferred, s.defer_until
    status: Literal["send", "suppressed", "deferred", "holdout"]
    if s.blocked:
        status = "suppressed"
        allowed, deferred, defer_until = [], {}, None
    elif s.arm == "holdout":
        status = "holdout"
        s.reasons.append(s.holdout_reason)
        defer_until = None
    elif defer_until is not None:
        status = "deferred"
        s.reasons.append("quiet_hours")
    else:
        status = "send"
    return Eligibility(
        status=status,
        arm=s.arm,
        reasons=s.reasons,
        allowed_channels=allowed,  # type: ignore[arg-type]
        defer_until=defer_until,
        channel_defer_until=deferred,  # type: ignore[arg-type]
        checks=checks,
    )
