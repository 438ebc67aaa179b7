"""The uniform-random reference: every allowed action (the segment's bank on the channels
eligibility allows, grid discounts within the cap) equally likely. The eval scores it through the
same pipeline, eligibility and cap as every other policy, so "better than random" means better than
a policy that knows the rules and nothing else. Draws are seeded by the customer id: the same inputs
give the same draw in any process."""

from __future__ import annotations

import random
from collections.abc import Sequence

from agent.policies.registry import BuildInputs
from core.actions import allowed_actions
from core.contracts import (
    ActionProbability,
    GuardrailSettings,
    PolicyOutcome,
    Proposal,
    stable_hash,
)
from core.policy import PolicyItem, Progress
from core.policy_kinds import RANDOM
from core.reference import ReferenceData
from core.templates import render_template


class RandomPolicy:
    name: str = RANDOM.name
    model: str | None = None
    prompt_version: str | None = None

    def __init__(self, guard: GuardrailSettings, ref: ReferenceData, seed: int = 0) -> None:
        self.guard, self.ref, self.seed = guard, ref, seed

    async def propose(
        self, batch: Sequence[PolicyItem], progress: Progress | None = None
    ) -> list[PolicyOutcome]:
        out = []
        for ctx, elig in batch:
            actions = allowed_actions(ctx.segment, elig.allowed_channels, self.guard.discount_cap, self.ref)
            if not actions:
                out.append(
                    PolicyOutcome(
                        customer_id=ctx.customer_id, proposal=None, failure_reason="no_allowed_action"
                    )
                )
                continue
            rng = random.Random(stable_hash([self.seed, ctx.customer_id]))
            action, discount = actions[rng.randrange(len(actions))]
            p = 1.0 / len(actions)
            subject, body = render_template(self.ref.templates[action.template_id], ctx.first_name, discount)
            out.append(
                PolicyOutcome(
                    customer_id=ctx.customer_id,
                    proposal=Proposal(
                        channel=action.channel,
                        template_id=action.template_id,
                        discount_pct=discount,
                        subject=subject,
                        message=body,
                        rationale="random: uniform over the allowed actions",
                    ),
                    propensity=p,
                    pmf=[
                        ActionProbability(template_id=a.template_id, discount_pct=d, probability=p)
                        for a, d in actions
                    ],
                )
            )
        if progress and out:
            progress(len(out))
        return out

    def stats(self) -> dict[str, int]:
        return {}


def build(inputs: BuildInputs) -> RandomPolicy:
    return RandomPolicy(inputs.guard, inputs.ref)
