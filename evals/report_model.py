"""The eval report as a typed contract (serialised to report.json and ops.eval_runs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, computed_field, model_validator

from core.contracts import Model
from evals.scorers import ScoreResult


class PolicyValue(Model):
    policy: str
    estimator: str
    metric: str
    value: float | None
    low: float | None
    high: float | None
    true_value: float | None = None
    ess: float
    support_action_share: float
    support_row_share: float

    @property
    def covers_truth(self) -> bool | None:
        if self.true_value is None or self.low is None or self.high is None:
            return None
        return self.low <= self.true_value <= self.high


class PromptVersionRow(Model):
    policy: str
    mode: str
    prompt_version: str
    schema_validity: float | None
    fallback_rate: float | None
    intervention_rate: float | None
    mean_discount: float | None
    mean_tokens: float | None
    mean_latency_ms: float | None
    ope_value: float | None
    ope_low: float | None
    ope_high: float | None


class CustomerValue(Model):
    """A policy's value per contactable customer (every customer counts once), by metric and segment:
    the truth (when the generator's is known), its share of the oracle's, and the DR estimate."""

    policy: str
    metric: str
    segment: str  # "all" or a segment
    customers: int
    true_value: float | None = None
    share_of_oracle: float | None = None
    dr_value: float | None = None
    dr_low: float | None = None
    dr_high: float | None = None
    # true incremental value over no contact: the true value minus the organic (no-contact) value of
    # the customers the policy contacts (a customer it leaves alone adds nothing either way)
    true_lift: float | None = None


class ConstraintCost(Model):
    """The oracle with one constraint lifted, per contactable customer, by the truth: what that
    constraint costs. Customers the lift newly makes contactable add their value to the total, which
    is divided by the same contactable customers as the oracle's, so `cost` is everything forgone."""

    constraint: Literal["sms_frequency_cap", "discount_cap", "consent"]
    label: str  # "SMS frequency cap"
    metric: str
    oracle_value: float  # the oracle under every constraint
    lifted_value: float  # the oracle with this constraint lifted
    cost: float  # lifted_value - oracle_value
    newly_contactable: int  # sampled customers only the lift lets anyone contact
    cost_from_newly_contactable: float = 0.0  # the part of `cost` those customers bring


class Comparison(Model):
    """Candidate minus baseline per contactable customer (paired DR: same rows, same resamples)."""

    metric: str
    value: float
    low: float
    high: float
    true_value: float | None = None
    sentence: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def width(self) -> float:
        """The 95% interval's width: what the logged data can tell apart (the gate's power)."""
        return self.high - self.low

    @model_validator(mode="before")
    @classmethod
    def _drop_width(cls, data: Any) -> Any:
        """report.json carries `width` (computed): reading it back recomputes it, not an extra input."""
        if isinstance(data, dict) and "width" in data:
            data = {k: v for k, v in data.items() if k != "width"}
        return data


class CaseResult(Model):
    suite: Literal["golden", "adversarial"]
    name: str
    policy: str
    passed: bool
    failures: list[str]


class EvalReport(Model):
    eval_id: str
    created_at: datetime  # when the eval ran
    data_as_of: datetime | None = None  # the warehouse data's date the decisions were made at
    evaluated_from: datetime | None = (
        None  # time split: logged touches from here on (a learned policy trains before)
    )
    seed: int
    candidate: dict[str, Any]
    baseline: dict[str, Any]
    sample_size: int
    n_logged: int
    has_truth: bool
    policy_values: list[PolicyValue] = Field(default_factory=list)
    scores: dict[str, list[ScoreResult]] = Field(default_factory=dict)
    prompt_versions: list[PromptVersionRow] = Field(default_factory=list)
    cases: list[CaseResult] = Field(default_factory=list)
    difference: dict[str, dict[str, float]] = Field(default_factory=dict)  # per logged touch
    primary_metric: str = "revenue_90d"
    contactable: int = 0  # customers the shared eligibility lets any policy contact
    customer_values: list[CustomerValue] = Field(default_factory=list)
    comparisons: list[Comparison] = Field(default_factory=list)  # per contactable customer
    headline: str = ""
    # with the truth: metric -> the organic (no-contact) value per contactable customer, and the
    # oracle with each constraint lifted
    organic_value: dict[str, float] = Field(default_factory=dict)
    constraint_costs: list[ConstraintCost] = Field(default_factory=list)

    def primary_comparison(self) -> Comparison | None:
        """Candidate - baseline per contactable customer on the primary metric (None: nobody contactable)."""
        return next((c for c in self.comparisons if c.metric == self.primary_metric), None)

    def not_worse(self) -> bool:
        """The `--fail-if-worse` gate: the 95% lower bound of the candidate - baseline difference per
        contactable customer on the primary metric (DR) is at least zero. False without a comparison."""
        c = self.primary_comparison()
        return c is not None and c.low >= 0

    def customer_value(self, policy: str, metric: str = "revenue_90d", segment: str = "all") -> CustomerValue:
        for v in self.customer_values:
            if (v.policy, v.metric, v.segment) == (policy, metric, segment):
                return v
        raise KeyError((policy, metric, segment))

    def value(self, policy: str, estimator: str = "dr", metric: str = "revenue_90d") -> PolicyValue:
        for v in self.policy_values:
            if (v.policy, v.estimator, v.metric) == (policy, estimator, metric):
                return v
        raise KeyError((policy, estimator, metric))
