"""The one contracts module: typed shapes that agent, guardrails, activation and evals exchange.

Nothing crosses a layer as a bare dict. Every model forbids extra fields and uses Literal types for
closed sets, so a typo in a channel or a status fails where it is made.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

# the mode types validate against the policy registry (core.policy_kinds), re-exported for contracts
from core.policy_kinds import Mode as Mode
from core.policy_kinds import PolicyMode as PolicyMode
from core.policy_kinds import PolicyName as PolicyName

Segment = Literal["high_value_lapse_risk", "new_users_first_week_intent", "churn_rescue_nps"]
SEGMENTS: tuple[str, ...] = get_args(Segment)
Channel = Literal["email", "sms", "push"]
CHANNELS: tuple[str, ...] = get_args(Channel)
Goal = Literal["90d_clv", "engagement"]
GOALS: tuple[str, ...] = get_args(Goal)
SegmentChoice = Literal["all", "high_value_lapse_risk", "new_users_first_week_intent", "churn_rescue_nps"]
Arm = Literal["treatment", "holdout"]
Status = Literal["send", "suppressed", "deferred", "holdout", "no_action"]
STATUSES: tuple[str, ...] = get_args(Status)
Verdict = Literal["pass", "fixed", "failed"]
DeliveryStatus = Literal["delivered", "failed", "dead_letter", "unchanged", "dry_run", "held", "conflict"]


# Bounded numbers of the run settings: each rule is written once, here, and used by the run
# configuration (core.config, which owns the defaults) and by every contract that carries the value.
Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
MAX_WINDOW_HOURS = 24 * 365
Hours = Annotated[float, Field(ge=0, le=MAX_WINDOW_HOURS, allow_inf_nan=False)]
Salt = Annotated[str, Field(min_length=1)]


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- reference data (dbt seeds under warehouse/dbt/seeds, loaded by core.reference) -------------


class ActionSpec(Frozen):
    """One row of the action bank: a template a segment may use, on one channel, within a range."""

    segment: Segment
    template_id: str
    channel: Channel
    min_discount_pct: float = Field(ge=0, le=100)
    max_discount_pct: float = Field(ge=0, le=100)
    description: str


class MessageTemplate(Frozen):
    """An approved message; subject/body are jinja2 with `first_name` and `discount_pct`."""

    template_id: str
    channel: Channel
    subject: Annotated[str | None, BeforeValidator(lambda v: v or None)]  # a blank CSV cell: no subject
    body: str


class ChannelLimit(Frozen):
    channel: Channel
    max_chars: int
    max_sms_segments: int
    max_subject_chars: int
    max_per_7d: int
    quiet_start_hour: int = Field(ge=0, le=23)
    quiet_end_hour: int = Field(ge=0, le=23)


class BannedTerm(Frozen):
    term: str
    category: Literal["prohibited_claim", "competitor", "instruction", "data_request", "internal_data"]


# --- the customer as a decision sees it -----------------------------------------------------------


class Consent(Frozen):
    email: bool
    sms: bool
    push: bool

    def allows(self, channel: str) -> bool:
        return bool(getattr(self, channel))


class LastContact(Frozen):
    email: datetime | None = None
    sms: datetime | None = None
    push: datetime | None = None


class SegmentScores(Frozen):
    high_value_lapse_risk: float
    new_users_first_week_intent: float
    churn_rescue_nps: float


class CustomerContext(Frozen):
    """Only what a decision needs. No email, phone or address; first name is the one personal token."""

    customer_id: str
    segment: Segment
    segment_reason: str
    scores: SegmentScores
    first_name: str
    country: str
    timezone: str
    signup_date: date
    tenure_days: int
    orders_count: int
    lifetime_revenue: float
    avg_order_value: float
    recency_days: int | None
    usual_gap_days: float | None
    rfm_segment: str
    sessions_7d: int
    sessions_30d: int
    product_views_30d: int
    add_to_cart_30d: int
    nps_score: int | None
    nps_comment: str | None = Field(default=None, max_length=300)
    consent: Consent
    preferred_channel: Channel
    last_contact: LastContact
    globally_suppressed: bool = False

    def context_hash(self) -> str:
        # pydantic's own JSON serialiser: field order is the model's, so the hash is stable and cheap.
        return hashlib.sha256(self.__pydantic_serializer__.to_json(self)).hexdigest()[:16]


# --- what a policy proposes and what the guardrails make of it ------------------------------------


class Proposal(Model):
    """What a policy (rules or LLM) proposes. The LLM's response model is a per-segment subclass
    whose channel and template_id are narrowed to that segment's action bank."""

    channel: Channel
    template_id: str
    discount_pct: float
    subject: str | None = None
    message: str
    rationale: str = ""


class GuardrailCheck(Model):
    name: str
    verdict: Verdict
    before: Any = None
    after: Any = None
    reason: str = ""

    @classmethod
    def of(
        cls, name: str, verdict: str, before: Any = None, after: Any = None, reason: str = ""
    ) -> GuardrailCheck:
        """One check, validated (from a dict: pydantic's fastest validating path)."""
        return cls.model_validate(
            {"name": name, "verdict": verdict, "before": before, "after": after, "reason": reason}
        )


class GuardrailReport(Model):
    decision_id: str
    customer_id: str
    checks: list[GuardrailCheck] = Field(default_factory=list)

    def add(
        self, name: str, verdict: Verdict, before: Any = None, after: Any = None, reason: str = ""
    ) -> None:
        self.checks.append(
            GuardrailCheck(name=name, verdict=verdict, before=before, after=after, reason=reason)
        )


class LLMAttempt(Model):
    """One request to the model: counted from instructor's hooks, not from the final object."""

    attempt: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    error: str | None = None


class GuardrailSettings(Frozen):
    """What the guardrails enforce. These defaults are the product's: the run configuration
    (core.config.RunConfig) takes its defaults for these fields from here, so each has one owner."""

    goal: Goal = "90d_clv"
    discount_cap: Percent = 5.0
    suppress_hours: Hours = 24.0
    global_holdout_pct: Percent = 5.0
    segment_holdout_pct: Percent = 10.0
    holdout_salt: Salt = "nba-holdout-v1"
    enforce_quiet_hours: bool = True


class Eligibility(Model):
    """Step 1's verdict for one customer: may they be contacted now, and on which channels."""

    status: Literal["send", "suppressed", "deferred", "holdout"]
    arm: Arm
    reasons: list[str] = Field(default_factory=list)
    allowed_channels: list[Channel] = Field(default_factory=list)
    defer_until: datetime | None = None
    # allowed channels that are inside their quiet hours now -> when each may next be used (UTC)
    channel_defer_until: dict[Channel, datetime] = Field(default_factory=dict)
    checks: list[GuardrailCheck] = Field(default_factory=list)

    @property
    def needs_proposal(self) -> bool:
        """Whether a policy (and so an LLM) should be asked for an action at all."""
        return self.status in ("send", "deferred")


class ActionProbability(Frozen):
    """One allowed action and the probability a stochastic policy gave it."""

    template_id: str
    discount_pct: float
    probability: float = Field(gt=0, le=1)


class PolicyOutcome(Model):
    """What a policy returns for one customer: a proposal, or None with the reason it has none, and
    what the decision log must know about how it was made (model, prompt, propensity, attempts)."""

    customer_id: str
    proposal: Proposal | None
    failure_reason: str | None = None
    model: str | None = None
    prompt_version: str | None = None
    propensity: float = Field(default=1.0, gt=0, le=1)  # of the proposed action
    pmf: list[ActionProbability] = Field(default_factory=list)  # a stochastic policy's whole distribution
    attempts: list[LLMAttempt] = Field(default_factory=list)
    cached: bool = False


class Decision(Model):
    decision_id: str
    run_id: str
    as_of: datetime
    customer_id: str
    segment: Segment
    goal: Goal
    arm: Arm
    status: Status
    reasons: list[str] = Field(default_factory=list)
    channel: Channel | None = None
    template_id: str | None = None
    discount_pct: float = 0.0
    subject: str | None = None
    message: str | None = None
    rationale: str = ""
    policy: PolicyName
    model: str | None = None
    prompt_version: str | None = None
    context_hash: str
    propensity: float = 1.0  # probability of this action under the policy that chose it
    # a stochastic policy's distribution over the allowed actions (empty: deterministic, or the
    # guardrails changed the action); what off-policy evaluation of our own log needs
    action_pmf: list[ActionProbability] = Field(default_factory=list)
    fallback_reason: str | None = None
    defer_until: datetime | None = None
    proposed_discount_pct: float | None = None
    attempts: list[LLMAttempt] = Field(default_factory=list)


class DecisionMeta(Model):
    """What the pipeline knows about a decision before the guardrails finalise it."""

    decision_id: str
    run_id: str
    as_of: datetime
    goal: Goal
    policy: PolicyMode
    model: str | None = None
    prompt_version: str | None = None


class ContactEvent(Frozen):
    """One row of the contact ledger: who was contacted, on which channel, through which destination."""

    customer_id: str
    channel: Channel
    destination: str
    contacted_at: datetime
    decision_id: str = ""
    run_id: str = ""


class DeliveryRecord(Model):
    decision_id: str
    destination: str
    idempotency_key: str
    payload_hash: str
    attempt: int
    status: DeliveryStatus
    destination_record_id: str | None = None
    error: str | None = None
    at: datetime


# --- offline evaluation ---------------------------------------------------------------------------


class LoggedTouch(Frozen):
    """One past marketing touch from the campaign history, chosen by the logging policy."""

    touch_id: str
    customer_id: str
    segment: Segment | None
    template_id: str
    discount_pct: float
    propensity: float = Field(gt=0, le=1)
    converted_14d: bool
    revenue_90d: float


def stable_hash(obj: Any, length: int = 16) -> str:
    """sha256 over canonical JSON: the same value hashes the same in any process, any day."""
    raw = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:length]
