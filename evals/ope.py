"""Off-policy estimators: the value of a target policy from touches logged by another policy.

Data. `LoggedData` is the typed contract: numpy arrays of one logged touch per row (the action as
an index into an `ActionSpace` of (template_id, discount_pct) pairs, its logging propensity, the two
reward metrics revenue_90d and converted_14d, optional features for the reward model). Build it
from contracts.LoggedTouch objects or from an Arrow table of mart_marketing__campaign_history.

Target policies. `TargetPolicy.deterministic(actions)`: the action index the policy takes on each
logged row, -1 when it takes no action there (suppressed, holdout, no eligible channel).
`TargetPolicy.stochastic(probs)`: an n x n_actions probability matrix; a row may sum to less than 1,
the rest being the probability of no action. **The reward of no action is defined as 0**: a policy
value is the expected reward attributable to the touches it sends (a suppressed customer earns the
policy nothing), the same convention for the truth (`true_policy_value`).

Estimators share `estimate_policy_value(data, target)` and `estimate_interval(data, target, *,
n_bootstrap, alpha, seed)` (after Open Bandit Pipeline's obp/ope/estimators.py): IPS, SNIPS and
DoublyRobust. Each is a function of column sums of per-row terms, so the percentile bootstrap
resamples those sums (evals.bootstrap), with the reward model of DR held fixed across resamples.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal
from weakref import WeakKeyDictionary

import numpy as np
import pyarrow as pa

from core.contracts import LoggedTouch
from evals.actions import NO_ACTION, ActionSpace, default_action_space
from evals.bootstrap import bootstrap_sums
from evals.reward_model import FittedRewardModel, GBMRewardModel, RewardModel

Metric = Literal["revenue_90d", "converted_14d"]
METRICS: tuple[Metric, ...] = ("revenue_90d", "converted_14d")
ExpectedRewardFn = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _col(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        raise ValueError(f"campaign history table has no column {name!r} (has {table.column_names})")
    return table.column(name).to_numpy(zero_copy_only=False)


@dataclass(frozen=True, eq=False)
class LoggedData:
    """Logged touches as aligned arrays (one row per touch), validated on construction."""

    actions: np.ndarray
    propensities: np.ndarray
    revenue_90d: np.ndarray
    converted_14d: np.ndarray
    customer_ids: np.ndarray
    segments: np.ndarray
    features: np.ndarray | None = None
    space: ActionSpace = field(default_factory=default_action_space)

    def __post_init__(self) -> None:
        n = len(self.actions)
        conv = np.asarray(self.converted_14d, dtype=np.float64)
        object.__setattr__(self, "actions", np.asarray(self.actions, dtype=np.int64))
        object.__setattr__(self, "propensities", np.asarray(self.propensities, dtype=np.float64))
        object.__setattr__(self, "revenue_90d", np.asarray(self.revenue_90d, dtype=np.float64))
        object.__setattr__(self, "converted_14d", conv)
        object.__setattr__(self, "customer_ids", np.asarray(self.customer_ids, dtype=object))
        object.__setattr__(self, "segments", np.asarray(self.segments, dtype=object))
        for name in ("propensities", "revenue_90d", "converted_14d", "customer_ids", "segments"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"LoggedData.{name} has {len(getattr(self, name))} rows, actions has {n}")
        if n and (self.actions.min() < 0 or self.actions.max() >= len(self.space)):
            raise ValueError(f"logged actions must be indices in [0, {len(self.space)})")
        if n and not (np.all(self.propensities > 0) and np.all(self.propensities <= 1)):
            raise ValueError("logged propensities must be in (0, 1]")
        if not (np.all(np.isfinite(self.revenue_90d)) and np.all(np.isin(conv, (0.0, 1.0)))):
            raise ValueError("revenue_90d must be finite and converted_14d must be 0/1")
        if self.features is not None:
            feats = np.asarray(self.features, dtype=np.float64).reshape(n, -1)
            if not np.all(np.isfinite(feats)):
                raise ValueError("features must be finite (impute missing values before building LoggedData)")
            object.__setattr__(self, "features", feats)

    @property
    def n(self) -> int:
        return len(self.actions)

    def take(self, rows: np.ndarray) -> LoggedData:
        """The logged rows at these indices (or where a boolean mask is true)."""
        idx = np.flatnonzero(rows) if rows.dtype == bool else rows
        return LoggedData(
            actions=self.actions[idx],
            propensities=self.propensities[idx],
            revenue_90d=self.revenue_90d[idx],
            converted_14d=self.converted_14d[idx],
            customer_ids=self.customer_ids[idx],
            segments=self.segments[idx],
            features=None if self.features is None else self.features[idx],
            space=self.space,
        )

    def reward(self, metric: Metric) -> np.ndarray:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")
        return self.revenue_90d if metric == "revenue_90d" else self.converted_14d

    @classmethod
    def from_touches(
        cls,
        touches: Sequence[LoggedTouch],
        *,
        features: np.ndarray | None = None,
        space: ActionSpace | None = None,
    ) -> LoggedData:
        space = space or default_action_space()
        actions = space.indices(
            np.array([t.template_id for t in touches], dtype=object),
            np.array([t.discount_pct for t in touches]),
        )
        segments = [t.segment or space.segments[a] for t, a in zip(touches, actions, strict=True)]
        return cls(
            actions=actions,
            propensities=np.array([t.propensity for t in touches], dtype=np.float64),
            revenue_90d=np.array([t.revenue_90d for t in touches], dtype=np.float64),
            converted_14d=np.array([t.converted_14d for t in touches], dtype=np.float64),
            customer_ids=np.array([t.customer_id for t in touches], dtype=object),
            segments=np.array(segments, dtype=object),
            features=features,
            space=space,
        )

    @classmethod
    def from_arrow(
        cls, table: pa.Table, *, feature_columns: Iterable[str] = (), space: ActionSpace | None = None
    ) -> LoggedData:
        """From mart_marketing__campaign_history (touch_id, customer_id, touched_at, template_id,
        channel, discount_pct, propensity, converted_14d, revenue_90d, segment) or any table with
        those columns; `feature_columns` (numeric, nulls filled with the column mean) feed DR."""
        space = space or default_action_space()
        actions = space.indices(_col(table, "template_id"), _col(table, "discount_pct").astype(np.float64))
        segs = (
            _col(table, "segment") if "segment" in table.column_names else np.array([None] * table.num_rows)
        )
        segs = np.array(
            [s if s else space.segments[a] for s, a in zip(segs, actions, strict=True)], dtype=object
        )
        feats = None
        cols = list(feature_columns)
        if cols:
            mat = np.column_stack([_col(table, c).astype(np.float64) for c in cols])
            col_mean = np.nan_to_num(np.nanmean(mat, axis=0)) if len(mat) else np.zeros(len(cols))
            feats = np.where(np.isnan(mat), col_mean, mat)
        return cls(
            actions=actions,
            propensities=_col(table, "propensity").astype(np.float64),
            revenue_90d=np.nan_to_num(_col(table, "revenue_90d").astype(np.float64)),
            converted_14d=_col(table, "converted_14d").astype(np.float64),
            customer_ids=_col(table, "customer_id").astype(object),
            segments=segs,
            features=feats,
            space=space,
        )


@dataclass(frozen=True, eq=False)
class TargetPolicy:
    """The policy being evaluated, on the logged rows: deterministic actions or a probability matrix."""

    name: str
    actions: np.ndarray | None = None
    probs: np.ndarray | None = None

    def __post_init__(self) -> None:
        if (self.actions is None) == (self.probs is None):
            raise ValueError("give exactly one of actions (deterministic) or probs (stochastic)")
        if self.probs is not None:
            p = np.asarray(self.probs)
            if p.ndim != 2 or np.any(p < 0) or np.any(p.sum(axis=1) > 1 + 1e-6):
                raise ValueError("probs must be n x n_actions, non-negative, rows summing to <= 1")
        else:
            object.__setattr__(self, "actions", np.asarray(self.actions, dtype=np.int64))

    @classmethod
    def deterministic(cls, actions: np.ndarray, name: str = "target") -> TargetPolicy:
        return cls(name=name, actions=actions)

    @classmethod
    def stochastic(cls, probs: np.ndarray, name: str = "target") -> TargetPolicy:
        return cls(name=name, probs=probs)

    def check(self, data: LoggedData) -> None:
        n_rows = len(self.actions) if self.actions is not None else self.probs.shape[0]  # type: ignore[union-attr]
        if n_rows != data.n:
            raise ValueError(f"target policy {self.name!r} covers {n_rows} rows, logged data has {data.n}")
        if (
            self.actions is not None
            and len(self.actions)
            and (self.actions.min() < NO_ACTION or self.actions.max() >= len(data.space))
        ):
            raise ValueError(f"target actions must be -1 (no action) or indices < {len(data.space)}")
        if self.probs is not None and self.probs.shape[1] != len(data.space):
            raise ValueError(f"probs has {self.probs.shape[1]} columns, the action space {len(data.space)}")

    def prob_of(self, logged_actions: np.ndarray) -> np.ndarray:
        """pi(a_i | x_i) of each row's logged action."""
        if self.actions is not None:
            return (self.actions == logged_actions).astype(np.float64)
        return np.asarray(self.probs)[np.arange(len(logged_actions)), logged_actions].astype(np.float64)

    def acted_mass(self) -> np.ndarray:
        """Probability that the policy takes some action on each row (1 - P(no action))."""
        if self.actions is not None:
            return (self.actions != NO_ACTION).astype(np.float64)
        return np.asarray(self.probs).sum(axis=1, dtype=np.float64)

    def expected(self, table: np.ndarray, cells: np.ndarray) -> np.ndarray:
        """sum_a pi(a | x_i) * table[cells_i, a]: a row-wise expectation, no-action counted as 0."""
        if self.actions is not None:
            acted = self.actions != NO_ACTION
            out = np.zeros(len(self.actions))
            out[acted] = table[cells[acted], self.actions[acted]]
            return out
        probs = np.asarray(self.probs)
        out = np.empty(probs.shape[0])
        for s in range(0, probs.shape[0], 65536):
            out[s : s + 65536] = np.einsum("ij,ij->i", probs[s : s + 65536], table[cells[s : s + 65536]])
        return out

    def used_actions(self) -> np.ndarray:
        if self.actions is not None:
            return np.unique(self.actions[self.actions != NO_ACTION])
        return np.flatnonzero(np.asarray(self.probs).sum(axis=0) > 0)


def importance_weights(data: LoggedData, target: TargetPolicy) -> np.ndarray:
    target.check(data)
    return target.prob_of(data.actions) / data.propensities


def effective_sample_size(data: LoggedData, target: TargetPolicy) -> float:
    """(sum w)^2 / sum w^2 of the importance weights: how many logged rows the estimate is worth."""
    w = importance_weights(data, target)
    sq = float(np.dot(w, w))
    return float(w.sum() ** 2 / sq) if sq > 0 else 0.0


@dataclass(frozen=True)
class SupportCoverage:
    action_share: float  # share of the target's actions that the logging policy ever took
    row_share: float  # share of rows whose target action the logging policy takes in that segment
    n_target_actions: int
    n_supported_actions: int


def support_coverage(data: LoggedData, target: TargetPolicy) -> SupportCoverage:
    """How much of the target policy the logged data can speak for.

    The logs hold only the propensity of the action taken, so the logging policy's support is taken
    empirically, per segment: action a has propensity > 0 for segment s if it was logged at least
    once for a customer of segment s. Row share: target probability mass on supported actions over
    the mass on any action (rows where the target takes no action need no support and count as 1).
    """
    target.check(data)
    used = target.used_actions()
    logged_any = np.zeros(len(data.space), dtype=bool)
    logged_any[np.unique(data.actions)] = True
    seg_names, seg_codes = np.unique(data.segments.astype(str), return_inverse=True)
    supp = np.zeros((len(seg_names), len(data.space)), dtype=bool)
    supp[seg_codes, data.actions] = True
    acted = target.acted_mass()
    supported_mass = target.expected(supp.astype(np.float64), seg_codes)
    row = np.where(acted > 0, supported_mass / np.where(acted > 0, acted, 1.0), 1.0)
    n_sup = int(logged_any[used].sum())
    return SupportCoverage(
        action_share=n_sup / len(used) if len(used) else 1.0,
        row_share=float(row.mean()) if data.n else 1.0,
        n_target_actions=len(used),
        n_supported_actions=n_sup,
    )


class Estimator(ABC):
    """A policy-value estimator: a function of column sums of per-row terms."""

    name: str = "estimator"

    def __init__(self, metric: Metric = "revenue_90d") -> None:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")
        self.metric: Metric = metric

    @abstractmethod
    def terms(self, data: LoggedData, target: TargetPolicy) -> np.ndarray:
        """Per-row terms (n x k) whose column sums determine the estimate."""

    @abstractmethod
    def combine(self, sums: np.ndarray) -> np.ndarray:
        """Estimate(s) from column sums (... x k)."""

    def estimate_policy_value(self, data: LoggedData, target: TargetPolicy) -> float:
        return float(self.combine(self.terms(data, target).sum(axis=0)))

    def estimate_interval(
        self,
        data: LoggedData,
        target: TargetPolicy,
        *,
        n_bootstrap: int = 1000,
        alpha: float = 0.05,
        seed: int,
    ) -> tuple[float, float]:
        """Percentile bootstrap interval at level 1 - alpha, reproducible from `seed`."""
        return self._interval(self.terms(data, target), n_bootstrap, alpha, seed)

    def _interval(self, terms: np.ndarray, n_bootstrap: int, alpha: float, seed: int) -> tuple[float, float]:
        if not 0 < alpha < 1:
            raise ValueError("alpha must be in (0, 1)")
        with np.errstate(divide="ignore", invalid="ignore"):
            values = self.combine(bootstrap_sums(terms, n_bootstrap=n_bootstrap, seed=seed))
        values = values[np.isfinite(values)]
        if not len(values):
            return (float("nan"), float("nan"))
        low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
        return float(low), float(high)

    def estimate(
        self,
        data: LoggedData,
        target: TargetPolicy,
        *,
        n_bootstrap: int = 1000,
        alpha: float = 0.05,
        seed: int,
    ) -> Estimate:
        """Value and interval from one computation of the per-row terms."""
        terms = self.terms(data, target)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = float(self.combine(terms.sum(axis=0)))
        low, high = self._interval(terms, n_bootstrap, alpha, seed)
        return Estimate(
            estimator=self.name, metric=self.metric, policy=target.name, value=value, low=low, high=high
        )


@dataclass(frozen=True)
class Estimate:
    estimator: str
    metric: str
    policy: str
    value: float
    low: float
    high: float


class IPS(Estimator):
    """Inverse propensity scoring: mean of w_i * r_i, w_i = pi(a_i|x_i) / p_i."""

    name = "ips"

    def terms(self, data: LoggedData, target: TargetPolicy) -> np.ndarray:
        w = importance_weights(data, target)
        return np.column_stack([w * data.reward(self.metric), np.ones(data.n)])

    def combine(self, sums: np.ndarray) -> np.ndarray:
        return sums[..., 0] / sums[..., 1]  # type: ignore[no-any-return]


class SNIPS(Estimator):
    """Self-normalised IPS: sum(w r) / sum(w), times the target's mean probability of acting, so a
    policy that takes no action on some rows is not credited with its value on the rows it acts on."""

    name = "snips"

    def terms(self, data: LoggedData, target: TargetPolicy) -> np.ndarray:
        w = importance_weights(data, target)
        return np.column_stack([w * data.reward(self.metric), w, target.acted_mass(), np.ones(data.n)])

    def combine(self, sums: np.ndarray) -> np.ndarray:
        # a policy that never acts is worth 0 (not 0/0); one that acts but is never matched is nan
        with np.errstate(divide="ignore", invalid="ignore"):
            value = (sums[..., 0] / sums[..., 1]) * (sums[..., 2] / sums[..., 3])
        return np.where(sums[..., 2] == 0, 0.0, value)


# Fitted reward models per logged data set, metric and model: every DR of one eval (each policy,
# each metric, the paired differences) shares one cross-fit instead of refitting it.
_FITS: WeakKeyDictionary[LoggedData, dict[tuple[str, object], FittedRewardModel]] = WeakKeyDictionary()


class DoublyRobust(Estimator):
    """DR: mean of q(x_i, pi) + w_i * (r_i - q(x_i, a_i)) with a direct-method reward model q
    cross-fitted on the logged data by customer (default: LightGBM on the features and the action;
    see evals.reward_model)."""

    name = "dr"

    def __init__(self, metric: Metric = "revenue_90d", reward_model: RewardModel | None = None) -> None:
        super().__init__(metric)
        self.reward_model: RewardModel = reward_model or GBMRewardModel()

    def fit(self, data: LoggedData) -> FittedRewardModel:
        fits = _FITS.setdefault(data, {})
        key = (self.metric, self.reward_model)
        if key not in fits:
            fits[key] = self.reward_model.fit_crossed(
                data.actions, data.reward(self.metric), data.features, len(data.space), data.customer_ids
            )
        return fits[key]

    def direct_method(self, data: LoggedData, target: TargetPolicy) -> float:
        """The reward model's own estimate (no correction): biased when the model misses confounders."""
        target.check(data)
        model = self.fit(data)
        return float(target.expected(model.table, model.cells).mean())

    def terms(self, data: LoggedData, target: TargetPolicy) -> np.ndarray:
        w = importance_weights(data, target)
        model = self.fit(data)
        dm = target.expected(model.table, model.cells)
        q_logged = model.table[model.cells, data.actions]
        return np.column_stack([dm + w * (data.reward(self.metric) - q_logged), np.ones(data.n)])

    def combine(self, sums: np.ndarray) -> np.ndarray:
        return sums[..., 0] / sums[..., 1]  # type: ignore[no-any-return]


def default_estimators(metric: Metric = "revenue_90d") -> list[Estimator]:
    return [IPS(metric), SNIPS(metric), DoublyRobust(metric)]


def true_row_values(
    data: LoggedData, target: TargetPolicy, truth: ExpectedRewardFn, *, metric: Metric = "revenue_90d"
) -> np.ndarray:
    """Per logged row, the true expected reward of the target's action for that row's customer (no
    action = 0). `truth(customer_ids, template_ids, discount_pcts)` returns (expected conversion,
    expected revenue) arrays, e.g. evals.truth_adapter.warehouse_truth()."""
    target.check(data)
    pick = 0 if metric == "converted_14d" else 1
    tids = np.array(data.space.template_ids, dtype=object)
    discs = np.array(data.space.discounts, dtype=np.float64)
    total = np.zeros(data.n)
    if target.actions is not None:
        rows = np.flatnonzero(target.actions != NO_ACTION)
        if len(rows):
            acts = target.actions[rows]
            total[rows] = truth(data.customer_ids[rows], tids[acts], discs[acts])[pick]
        return total
    probs = np.asarray(target.probs)
    for a in target.used_actions():
        rows = np.flatnonzero(probs[:, a] > 0)
        values = truth(
            data.customer_ids[rows], np.full(len(rows), tids[a], dtype=object), np.full(len(rows), discs[a])
        )
        total[rows] += probs[rows, a] * values[pick]
    return total


def true_policy_value(
    data: LoggedData, target: TargetPolicy, truth: ExpectedRewardFn, *, metric: Metric = "revenue_90d"
) -> float:
    """Mean over the logged rows of `true_row_values` (the per-touch estimand the estimators target)."""
    values = true_row_values(data, target, truth, metric=metric)
    return float(values.mean()) if data.n else 0.0


def per_customer(data: LoggedData, terms: np.ndarray) -> np.ndarray:
    """Per-row terms -> one row per customer, each column averaged over the customer's rows. An
    estimator's `combine` over these is its estimate of the mean over customers (the per-customer
    estimand: every customer counts once, however many touches they had), and bootstrapping these
    rows resamples customers."""
    _, inverse, counts = np.unique(data.customer_ids.astype(str), return_inverse=True, return_counts=True)
    sums = np.zeros((len(counts), terms.shape[1]))
    np.add.at(sums, inverse.ravel(), terms)
    return sums / counts[:, None]
