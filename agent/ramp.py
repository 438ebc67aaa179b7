"""The live ramp: a candidate policy decides for a randomized share of the customers, the policy in
place for the rest, and a sequential test on their outcomes promotes the candidate or rolls it back.

Design. Every decision of a ramp run flips its own coin (a hash of ramp, customer and day), so
each day is a fresh randomized comparison. Both policies propose for every customer; the coin
picks whose proposal is sent, and the decision logs the mixture's exact propensity
(share x candidate's + (1 - share) x incumbent's probability of the sent action), so our own log
stays usable for off-policy evaluation. `ops.ramp_assignments` keeps both distributions.

Test. Per sent decision with outcome r, the paired inverse-propensity term
`r x (pi_c(a) - pi_b(a)) / mu(a)` (mu the mixture) is an unbiased estimate of the candidate's gain
over the incumbent on that customer, and is exactly 0 where both policies would have done the same,
so only the customers they disagree on add noise. An asymptotic confidence sequence (Waudby-Smith
et al., "Time-uniform central limit theory", normal mixture) on the mean of the terms may be looked
at after every day without inflating the error: the candidate is promoted once the lower bound
clears minus the margin (non-inferior), rolled back once the upper bound is below zero (worse), and
rolled back as inconclusive at `max_decisions`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import duckdb
import numpy as np
import pyarrow as pa

from core.config import RampSettings
from core.contracts import ActionProbability, Goal, PolicyMode, PolicyOutcome
from core.policy import Policy, PolicyItem, Progress, policy_identity
from core.policy_kinds import kind

Arm = Literal["candidate", "incumbent"]
State = Literal["ramp", "promoted", "rolled_back"]
Dist = dict[tuple[str, float], float]
# decisions the confidence sequence is tightest at (its width grows only with log t elsewhere)
HORIZON = 5000


def coin(ramp_id: str, customer_id: str, day: datetime) -> float:
    """A number in [0, 1) from (ramp, customer, day): the same in any process, fresh every day."""
    d = hashlib.sha256(f"{ramp_id}|{customer_id}|{day:%Y-%m-%d}".encode()).digest()
    return int.from_bytes(d[:7], "big") / float(1 << 56)


def distribution(outcome: PolicyOutcome | None) -> Dist:
    """(template, discount) -> probability: the policy's own distribution, or its one proposal."""
    if outcome is None or outcome.proposal is None:
        return {}
    if outcome.pmf:
        return {(a.template_id, float(a.discount_pct)): a.probability for a in outcome.pmf}
    return {(outcome.proposal.template_id, float(outcome.proposal.discount_pct)): 1.0}


@dataclass(frozen=True)
class Assignment:
    customer_id: str
    arm: Arm
    candidate: Dist
    incumbent: Dist


class RampPolicy:
    """The candidate on `share` of the decisions, the incumbent on the rest (see the module doc)."""

    def __init__(
        self, candidate: Policy, incumbent: Policy, *, ramp_id: str, share: float, as_of: datetime
    ) -> None:
        if not 0 < share < 1:
            raise ValueError(f"a ramp's share must be in (0, 1), got {share}")
        self.candidate, self.incumbent = candidate, incumbent
        self.ramp_id, self.share, self.as_of = ramp_id, share, as_of
        self.name: PolicyMode = candidate.name
        self.model = candidate.model
        self.prompt_version = candidate.prompt_version
        self.identity = f"ramp:{policy_identity(candidate)}"
        self.assignments: list[Assignment] = []

    async def propose(
        self, batch: Sequence[PolicyItem], progress: Progress | None = None
    ) -> list[PolicyOutcome]:
        cand = await self.candidate.propose(batch, progress)
        inc = await self.incumbent.propose(batch)
        out = []
        for (ctx, _), c, b in zip(batch, cand, inc, strict=True):
            arm: Arm = (
                "candidate" if coin(self.ramp_id, ctx.customer_id, self.as_of) < self.share else "incumbent"
            )
            # a candidate with no proposal falls back to the rules in the guardrails: where the
            # incumbent is the rules, that is the incumbent's own distribution
            pb = distribution(b)
            pc = distribution(c) or (pb if kind(self.incumbent.name).is_fallback else {})
            self.assignments.append(Assignment(ctx.customer_id, arm, pc, pb))
            chosen = c if arm == "candidate" else b
            if chosen.proposal is None:
                out.append(chosen)
                continue
            mix = {
                a: self.share * pc.get(a, 0.0) + (1 - self.share) * pb.get(a, 0.0) for a in sorted({*pc, *pb})
            }
            sent = (chosen.proposal.template_id, float(chosen.proposal.discount_pct))
            pmf = [
                ActionProbability(template_id=t, discount_pct=d, probability=p)
                for (t, d), p in mix.items()
                if p > 0
            ]
            out.append(chosen.model_copy(update={"propensity": min(mix[sent], 1.0), "pmf": pmf}))
        return out

    def stats(self) -> dict[str, int]:
        arms = [a.arm for a in self.assignments]
        return {"ramp_candidate": arms.count("candidate"), "ramp_incumbent": arms.count("incumbent")}

    def assignment_table(self, run_id: str) -> pa.Table:
        """Rows for ops.ramp_assignments."""
        enc = lambda d: json.dumps([[t, p_d, p] for (t, p_d), p in sorted(d.items())])  # noqa: E731
        a = self.assignments
        return pa.table(
            {
                "run_id": [run_id] * len(a),
                "customer_id": [x.customer_id for x in a],
                "ramp_id": [self.ramp_id] * len(a),
                "arm": [x.arm for x in a],
                "share": [self.share] * len(a),
                "candidate_pmf": [enc(x.candidate) for x in a],
                "incumbent_pmf": [enc(x.incumbent) for x in a],
            }
        )


def decode(raw: str) -> Dist:
    return {(t, float(d)): float(p) for t, d, p in json.loads(raw)}


def paired_terms(
    sent: Sequence[tuple[str, float]],
    rewards: np.ndarray,
    cand: Sequence[Dist],
    inc: Sequence[Dist],
    share: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(gain terms, incumbent-value terms) per sent decision; a decision whose sent action neither
    policy proposed (the guardrails changed it) has no known propensity and gets nan."""
    gain, base = np.full(len(sent), np.nan), np.full(len(sent), np.nan)
    for i, a in enumerate(sent):
        pc, pb = cand[i].get(a, 0.0), inc[i].get(a, 0.0)
        mu = share * pc + (1 - share) * pb
        if mu > 0:
            gain[i] = rewards[i] * (pc - pb) / mu
            base[i] = rewards[i] * pb / mu
    return gain, base


def half_width(t: int, var: float, alpha: float, horizon: int = HORIZON) -> float:
    """The confidence sequence's half-width after `t` terms of variance `var` (normal mixture whose
    mixing variance makes it tightest at `horizon` terms)."""
    la = -2 * math.log(alpha)
    rho2 = (la + math.log(la + 1)) / (horizon * var)
    v = t * var * rho2 + 1
    return math.sqrt(2 * v / (t * t * rho2) * math.log(math.sqrt(v) / alpha))


def confidence_sequence(
    terms: np.ndarray, alpha: float, horizon: int = HORIZON
) -> tuple[float, float, float]:
    """(mean, low, high): a two-sided asymptotic confidence sequence for the mean of `terms`, valid
    at every sample size at once."""
    t = len(terms)
    if t < 2:
        return (float(np.mean(terms)) if t else 0.0, -math.inf, math.inf)
    mean, var = float(np.mean(terms)), float(np.var(terms, ddof=1))
    if var <= 0:
        return mean, mean, mean
    half = half_width(t, var, alpha, horizon)
    return mean, mean - half, mean + half


@dataclass(frozen=True)
class Verdict:
    state: State
    decisions: int
    estimate: float  # candidate minus incumbent per decision, the goal's metric
    low: float
    high: float
    incumbent_value: float
    reason: str = field(default="")


def verdict(
    gain: np.ndarray,
    base: np.ndarray,
    *,
    margin: float,
    alpha: float,
    min_decisions: int,
    max_decisions: int,
    shown_better: bool = False,
    canary_decisions: int = 0,
) -> Verdict:
    """Promote, roll back, or keep ramping, from the terms of the ramp's outcomes so far. A candidate
    `shown_better` offline is promoted after `canary_decisions` outcomes that do not show it worse."""
    keep = np.isfinite(gain)
    gain, base = gain[keep], base[keep]
    n = len(gain)
    mean, low, high = confidence_sequence(gain, alpha)
    value = float(base.mean()) if n else 0.0
    bound = -margin * abs(value)
    said = f"{n} decisions: candidate - in place {mean:+.3f} per decision [{low:+.3f}, {high:+.3f}]"
    if n < min_decisions:
        return Verdict("ramp", n, mean, low, high, value, f"{said}; waiting for {min_decisions}")
    if low >= bound:
        return Verdict("promoted", n, mean, low, high, value, f"{said} >= {bound:+.3f} (margin {margin:.0%})")
    if high < 0:
        return Verdict("rolled_back", n, mean, low, high, value, f"{said}: worse")
    if shown_better and n >= canary_decisions:
        return Verdict("promoted", n, mean, low, high, value, f"{said}: shown better offline, no harm live")
    if n >= max_decisions:
        return Verdict("rolled_back", n, mean, low, high, value, f"{said}: inconclusive at {max_decisions}")
    return Verdict("ramp", n, mean, low, high, value, f"{said}: undecided")


_RAMP_ROWS_SQL = """
select d.template_id, d.discount_pct, o.revenue_90d, o.converted_14d, a.candidate_pmf, a.incumbent_pmf, a.share
from ops.ramp_assignments a
join ops.decision_log d on d.run_id = a.run_id and d.customer_id = a.customer_id
join (select distinct on (decision_id) * from ops.decision_outcomes order by decision_id, observed_at) o
  on o.decision_id = d.decision_id
where a.ramp_id = ? and d.status = 'send' and not d.dry_run and d.template_id is not null
"""


def ramp_verdict(
    con: duckdb.DuckDBPyConnection,
    ramp_id: str,
    *,
    goal: Goal,
    settings: RampSettings,
    shown_better: bool = False,
) -> Verdict:
    """The sequential test on every sent decision of the ramp that has an outcome so far."""
    rows = con.execute(_RAMP_ROWS_SQL, [ramp_id]).fetchall()
    reward = np.array([float(r[2] or 0.0) if goal == "90d_clv" else float(bool(r[3])) for r in rows])
    gain, base = paired_terms(
        [(r[0], float(r[1] or 0.0)) for r in rows],
        reward,
        [decode(r[4]) for r in rows],
        [decode(r[5]) for r in rows],
        float(rows[0][6]) if rows else settings.share,
    )
    return verdict(
        gain,
        base,
        margin=settings.margin,
        alpha=settings.alpha,
        min_decisions=settings.min_decisions,
        max_decisions=settings.max_decisions,
        shown_better=shown_better,
        canary_decisions=settings.canary_decisions,
    )
