"""A toy eligibility check, destination and policy, written the way a new one is written in the
product: one class (or policy file) with everything about it, and one registration line (see
test_extension_points)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from activation.destinations.base import ItemResult, OutboundItem, RateLimit
from activation.destinations.registry import DestinationType
from agent.policies import BuildInputs, RulesPolicy
from core.config import Section
from core.contracts import Decision, GuardrailCheck, PolicyOutcome
from core.policy import PolicyItem, Progress
from core.policy_kinds import PolicyKind
from guardrails.checks import EligibilityCheck, Screen, Setting, entry


class ToyBlocklist(EligibilityCheck):
    """Suppresses every customer whose id ends in 7: a stand-in for a house rule such as a legal hold."""

    name = "toy_blocklist"
    label = "toy blocklist"
    blocks = True
    code = "toy_blocklisted"

    def run(self, s: Screen) -> GuardrailCheck:
        held = s.ctx.customer_id.endswith("7")
        verdict = "failed" if held else "pass"
        return entry(
            name=self.name, verdict=verdict, before=None, after=None, reason=self.code if held else ""
        )

    def explain(self, c: GuardrailCheck, s: Setting) -> str:
        return (
            "on the toy blocklist: never contacted" if c.verdict == "failed" else "not on the toy blocklist"
        )


class ToySettings(Section):
    """Section NBA_TOY__: where it would post (a dry run fills in a placeholder) and a campaign tag."""

    endpoint: str
    campaign: str = "toy"


class ToyDestination:
    """Builds one payload per send; sending is never reached on a dry run."""

    name = "toy"
    max_batch = 10
    secrets: tuple[str, ...] = ()

    def __init__(self, settings: ToySettings, *, timeout_s: float = 30.0) -> None:
        self.settings = settings
        self.rate_limit = RateLimit(max_requests=10, window_s=1.0)

    def accepts(self, decision: Decision) -> bool:
        return decision.status == "send"

    def record_key(self, decision: Decision) -> str:
        return decision.customer_id

    def build_payload(self, decision: Decision) -> dict[str, Any]:
        return {
            "campaign": self.settings.campaign,
            "customer_id": decision.customer_id,
            "template_id": decision.template_id,
        }

    def send_batch(self, items: list[OutboundItem]) -> list[ItemResult]:
        raise AssertionError("a dry run never sends")

    def close(self) -> None:
        pass


TOY = DestinationType(
    name="toy", settings=ToySettings, connect=ToyDestination, dry_run={"endpoint": "https://dry-run.invalid"}
)


# --- a policy: its kind, the policy, and how it is built (agent/policies/<name>.py in the product) ---

TOY_POLICY = PolicyKind("toy", on_spark=False)  # needs no endpoint, learns nothing, runs in-process


class ToyPolicy:
    """The rules' action with the toy's own rationale; it abstains for customers whose id ends in 3
    (the guardrails then fall back to the rules, logged as `toy->rules`)."""

    name = TOY_POLICY.name
    model: str | None = None
    prompt_version: str | None = None

    def __init__(self, rules: RulesPolicy) -> None:
        self.rules = rules

    async def propose(
        self, batch: Sequence[PolicyItem], progress: Progress | None = None
    ) -> list[PolicyOutcome]:
        out = []
        for ctx, elig in batch:
            p = None if ctx.customer_id.endswith("3") else self.rules.propose_one(ctx, elig.allowed_channels)
            proposal = p.model_copy(update={"rationale": "toy: the rules' action"}) if p else None
            why = None if proposal else "toy_abstains"
            out.append(PolicyOutcome(customer_id=ctx.customer_id, proposal=proposal, failure_reason=why))
        return out

    def stats(self) -> dict[str, int]:
        return {}


def build_toy(inputs: BuildInputs) -> ToyPolicy:
    return ToyPolicy(RulesPolicy(inputs.guard, inputs.ref))
