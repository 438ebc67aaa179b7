"""The guardrail checks, one class each, registered here in the order they run.

A check owns its name, its label, whether its failure suppresses the customer, its run and the
sentence that explains it; the engine runs the registries, and the plan, `explain` and the run
summary ask a check about itself by the name its report logged. A new check is one file in this
folder and one line below (or `ELIGIBILITY.register(...)` from outside).
"""

from __future__ import annotations

from core.contracts import GuardrailCheck
from guardrails.checks.action_bank import ActionBank
from guardrails.checks.bank_channels import ActionBankChannels
from guardrails.checks.base import (
    Check,
    EligibilityCheck,
    ProposalCheck,
    Registry,
    Screen,
    Vetting,
    entry,
    find,
    plain,
)
from guardrails.checks.channel_allowed import ChannelAllowed
from guardrails.checks.consent import Consent
from guardrails.checks.control_chars import ControlChars
from guardrails.checks.discount_clamp import DiscountClamp
from guardrails.checks.frequency_cap import FrequencyCap
from guardrails.checks.global_suppression import GlobalSuppression
from guardrails.checks.holdout import Holdout
from guardrails.checks.message import MessageCopy, MessageRerender
from guardrails.checks.outcome import Fallback, NoProposal, QuietHoursChannel
from guardrails.checks.placeholders import Placeholders
from guardrails.checks.quiet_hours import QuietHours
from guardrails.checks.suppression_window import SuppressionWindow
from guardrails.checks.words import Setting

# Step 1, before any policy is asked: every check runs for every customer.
ELIGIBILITY: Registry[EligibilityCheck] = Registry(
    Holdout(),
    GlobalSuppression(),
    Consent(),
    SuppressionWindow(),
    FrequencyCap(),
    ActionBankChannels(),
    QuietHours(),
)
# Steps 2-4, on a proposal: the first failure that cannot be fixed ends the vetting.
PROPOSAL: Registry[ProposalCheck] = Registry(
    ActionBank(),
    ChannelAllowed(),
    DiscountClamp(),
    ControlChars(),
    Placeholders(),
    MessageCopy(),
    MessageRerender(),
)
# What the engine records as it settles the decision.
NO_PROPOSAL, FALLBACK, QUIET_HOURS_CHANNEL = NoProposal(), Fallback(), QuietHoursChannel()
OUTCOME: Registry[Check] = Registry(NO_PROPOSAL, FALLBACK, QUIET_HOURS_CHANNEL)

__all__ = [
    "ELIGIBILITY",
    "FALLBACK",
    "NO_PROPOSAL",
    "OUTCOME",
    "PROPOSAL",
    "QUIET_HOURS_CHANNEL",
    "Check",
    "EligibilityCheck",
    "ProposalCheck",
    "Registry",
    "Screen",
    "Setting",
    "Vetting",
    "blocks",
    "describe",
    "entry",
    "is_eligibility",
    "label",
]


def describe(c: GuardrailCheck, s: Setting) -> str:
    """One logged entry in words, by the check that logged it."""
    check = find(c.name)
    return check.explain(c, s) if check is not None else plain(c)


def label(name: str) -> str:
    """The short label of a check (tables, counts per outcome); any other name as it is."""
    check = find(name)
    return check.label if check is not None else name


def blocks(name: str) -> bool:
    """Whether a failure of that check suppresses the customer."""
    check = find(name)
    return check is not None and check.blocks


def is_eligibility(name: str) -> bool:
    """Whether that check runs before any policy is asked (step 1)."""
    return isinstance(find(name), EligibilityCheck)
