"""Which guardrail check decided a decision, and why a decision sends nothing, in one sentence.

What each check means (its label, whether it blocks, the sentence for one logged entry) lives with
the check in `guardrails/checks/`; this module only chooses the check that speaks for a decision.

`deciding_check` names the one check that gave a decision its final status, so counts per outcome
add up to the run summary's counts (each decision counted once).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.contracts import GuardrailCheck
from guardrails.checks import Setting, blocks, describe, is_eligibility


def deciding_check(status: str, checks: Sequence[GuardrailCheck]) -> str:
    """The check that gave the decision its status (counts per outcome add up to the run's counts).
    suppressed: the first failed blocking check; holdout: `holdout`; deferred: the quiet-hours
    check; no_action: the last failed check; send: the first fix on the way, or 'as proposed'."""
    if status == "holdout":
        return "holdout"
    if status == "suppressed":
        return next((c.name for c in checks if c.verdict == "failed" and blocks(c.name)), "unknown")
    if status == "deferred":
        return (
            "quiet_hours_channel" if any(c.name == "quiet_hours_channel" for c in checks) else "quiet_hours"
        )
    if status == "no_action":
        return next((c.name for c in reversed(checks) if c.verdict == "failed"), "unknown")
    return next(
        (c.name for c in checks if c.verdict == "fixed" and not is_eligibility(c.name)), "as proposed"
    )


def why_not_sent(status: str, checks: Sequence[GuardrailCheck], s: Setting) -> str:
    """A decision that sends nothing now, in one sentence ('' for a send)."""
    if status == "send":
        return ""
    if status == "deferred":
        c = next((c for c in checks if c.name == "quiet_hours_channel"), None) or next(
            (c for c in checks if c.name == "quiet_hours"), None
        )
        return describe(c, s) if c else "deferred"
    if status == "holdout":
        c = next((c for c in checks if c.name == "holdout"), None)
        return describe(c, s) if c else "held out"
    failed = [
        c for c in checks if c.verdict == "failed" and (status != "suppressed" or is_eligibility(c.name))
    ]
    return "; ".join(describe(c, s) for c in failed) or status.replace("_", " ")


def checks_of(raw: str | Sequence[Mapping[str, Any]] | None) -> list[GuardrailCheck]:
    """A logged guardrail report (JSON text or a list of dicts) as checks."""
    import json

    rows = json.loads(raw) if isinstance(raw, str) else (raw or [])
    return [GuardrailCheck.model_validate(r) for r in rows]
