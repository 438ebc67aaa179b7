"""Off-policy estimates from anyone's logs: one table of logged bandit decisions in, IPS, SNIPS and
DR estimates with bootstrap intervals out (docs/ope.md describes the format).

A row is one logged decision: the action taken (any label: a string or an integer), the reward
observed, the logging policy's probability of that action, and optionally numeric context features
(DR's reward model) and a group (the unit the reward model is cross-fitted by, e.g. a customer id).
The candidate policy comes in one of four shapes, each a small typed value:

- `TargetAction(column)`: the action the candidate takes on each row (null: it takes none);
- `TargetProbs(columns=... | prefix=...)`: its probability of every action, one column per action;
- `TargetLong(table, row_col, action_col, prob_col)`: the same as a long table keyed by a row id;
- `TargetLoggedProb(column)`: only its probability of the logged action (IPS and SNIPS; DR needs
  the candidate's probability of every action, so it is refused with this shape).

Actions map onto an action space: by default the sorted distinct logged labels (`LabelActionSpace`;
a candidate's action the logs never took is refused unless `actions=` lists it); pass our `ActionSpace` to read our own campaign history, whose labels are
`ActionSpace.label(i)` ("winback_soft@10"). A bad table raises one ValueError naming the column and
the fix. The estimators are evals.ope's, unchanged: this module only builds their inputs.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from core.contracts import ActionSpec
from evals.actions import NO_ACTION, ActionSpace, UnknownTemplateError
from evals.ope import (
    IPS,
    SNIPS,
    DoublyRobust,
    Estimate,
    Estimator,
    LoggedData,
    TargetPolicy,
)

EstimatorName = Literal["ips", "snips", "dr"]
ESTIMATORS: tuple[EstimatorName, ...] = ("ips", "snips", "dr")
TableSource: TypeAlias = pa.Table | str | Path


@dataclass(frozen=True)
class LabelActionSpace(ActionSpace):
    """An action space of arbitrary labels (anyone's logs): no template, discount, segment or channel."""

    specs: tuple[ActionSpec, ...] = ()
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.labels)
        if len(set(self.labels)) != n:
            raise ValueError("action labels must be distinct")
        object.__setattr__(self, "template_ids", tuple(self.labels))
        object.__setattr__(self, "discounts", (0.0,) * n)
        object.__setattr__(self, "segments", ("",) * n)
        object.__setattr__(self, "channels", ("",) * n)
        object.__setattr__(self, "_by_label", {label: i for i, label in enumerate(self.labels)})

    def label(self, i: int) -> str:
        return self.labels[i]

    def index(self, template_id: str, discount_pct: float = 0.0) -> int:
        try:
            return self._by_label[str(template_id)]  # type: ignore[attr-defined,no-any-return]
        except KeyError:
            raise UnknownTemplateError(str(template_id)) from None


@dataclass(frozen=True)
class TargetAction:
    """The candidate's action on each row, a label in `column` (null: no action on that row)."""

    column: str


@dataclass(frozen=True)
class TargetProbs:
    """The candidate's probability of each action, one column per action: `columns` maps an action
    label to its column, or every column named `prefix` + label is one. A row may sum to less than
    1 (the rest: no action)."""

    columns: Mapping[str, str] | None = None
    prefix: str | None = None


@dataclass(frozen=True)
class TargetLong:
    """The candidate's probabilities as a long table: one row per (logged row, action) with a
    positive probability; `row_col` names the row id in both tables. A logged row the long table
    does not list is one where the candidate takes no action."""

    table: TableSource
    row_col: str
    action_col: str = "action"
    prob_col: str = "prob"


@dataclass(frozen=True)
class TargetLoggedProb:
    """Only the candidate's probability of each row's logged action (its other actions unknown):
    enough for IPS and SNIPS, which assume the candidate acts on every row; not for DR."""

    column: str


Target = TargetAction | TargetProbs | TargetLong | TargetLoggedProb


def read_table(source: TableSource, what: str = "table") -> pa.Table:
    """An Arrow table as given, or read from a .parquet or .csv file."""
    if isinstance(source, pa.Table):
        return source
    path = Path(source)
    if not path.is_file():
        raise ValueError(f"{what} {str(path)!r}: no such file; give a .parquet or .csv file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pq.read_table(path)
        if suffix == ".csv":
            return pa_csv.read_csv(path)
    except (pa.ArrowInvalid, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{what} {str(path)!r} cannot be read ({first}); give a valid file") from None
    raise ValueError(f"{what} {str(path)!r}: unsupported file type {suffix!r}; give a .parquet or .csv file")


def _column(table: pa.Table, name: str, role: str, param: str) -> pa.ChunkedArray:
    if name not in table.column_names:
        raise ValueError(
            f"no column {name!r} for {role} in the table (columns: {', '.join(table.column_names)}); "
            f"pass the column that holds it as {param}="
        )
    return table.column(name)


def _labels(col: pa.ChunkedArray) -> np.ndarray:
    """Action labels as strings (integers too), nulls kept as None."""
    return np.asarray(col.cast(pa.string()).to_pylist(), dtype=object)


def _numbers(col: pa.ChunkedArray, name: str, role: str) -> np.ndarray:
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type)):
        raise ValueError(
            f"{role} column {name!r} is {col.type}, not numeric; "
            + (
                "encode it as numbers (one-hot or integer codes)"
                if role == "feature"
                else "give a column of numbers"
            )
        )
    return np.asarray(col.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def _bad_rows(mask: np.ndarray) -> str:
    rows = np.flatnonzero(mask)
    return f"{len(rows)} row(s), e.g. row {int(rows[0])}"


def _prob_columns(table: pa.Table, target: TargetProbs) -> dict[str, str]:
    if (target.columns is None) == (target.prefix is None):
        raise ValueError("TargetProbs: give exactly one of columns (action label -> column) or prefix")
    if target.columns is not None:
        for col in target.columns.values():
            _column(table, col, "a target probability", "TargetProbs(columns)")
        return {str(k): v for k, v in target.columns.items()}
    prefix = target.prefix or ""
    found = {c[len(prefix) :]: c for c in table.column_names if c.startswith(prefix) and len(c) > len(prefix)}
    if not found:
        raise ValueError(
            f"no column starts with the target prefix {prefix!r} (columns: {', '.join(table.column_names)}); "
            "name one column per action <prefix><action label>"
        )
    return found


def _space(labels: np.ndarray, actions: ActionSpace | Sequence[str] | None) -> ActionSpace:
    """The given action space, or one of the given labels, or of the logged labels (a candidate's
    action the logs never took is refused there: no estimator can speak for it without a model)."""
    if isinstance(actions, ActionSpace):
        return actions
    given = [str(a) for a in actions] if actions is not None else sorted(set(labels))
    return LabelActionSpace(labels=tuple(dict.fromkeys(given)))


def _indices(labels: np.ndarray, space: ActionSpace, column: str) -> np.ndarray:
    index = {space.label(i): i for i in range(len(space))}
    out = np.fromiter(
        (index.get(x, -2) if x is not None else NO_ACTION for x in labels), np.int64, len(labels)
    )
    unknown = out == -2
    if unknown.any():
        bad = sorted({str(x) for x in labels[unknown]})[:3]
        raise ValueError(
            f"column {column!r}: label(s) {bad} are not among the actions (those logged, or actions=) "
            f"({_bad_rows(unknown)}); fix the labels, or pass actions= listing every action to estimate "
            "a candidate that takes actions the logs never did"
        )
    return out


def _probs(values: np.ndarray, role: str) -> None:
    bad = ~np.isfinite(values) | (values < 0) | (values > 1)
    if bad.any():
        raise ValueError(f"{role}: {_bad_rows(bad)} not a probability in [0, 1]; fix or drop those rows")


def _target_policy(table: pa.Table, target: Target, data: LoggedData, name: str) -> TargetPolicy:
    n, k = data.n, len(data.space)
    if isinstance(target, TargetAction):
        labels = _labels(_column(table, target.column, "the candidate's action", "TargetAction(column)"))
        return TargetPolicy.deterministic(_indices(labels, data.space, target.column), name=name)
    if isinstance(target, TargetLoggedProb):
        col = _column(table, target.column, "the candidate's probability of the logged action", "column")
        p = _numbers(col, target.column, "target probability")
        _probs(p, f"target probability column {target.column!r}")
        # IPS and SNIPS read only pi(logged action) and the probability of acting (taken as 1): the
        # rest of each row's mass sits on the other actions, which those estimators never look at
        probs = np.zeros((n, k), dtype=np.float64)
        probs[np.arange(n), data.actions] = p
        if k > 1:
            rest = (1.0 - p) / (k - 1)
            probs += rest[:, None]
            probs[np.arange(n), data.actions] = p
        return TargetPolicy.stochastic(probs, name=name)
    probs = np.zeros((n, k), dtype=np.float64)
    if isinstance(target, TargetProbs):
        for label, column in _prob_columns(table, target).items():
            values = _numbers(table.column(column), column, "target probability")
            _probs(values, f"target probability column {column!r}")
            probs[:, _indices(np.array([label], dtype=object), data.space, column)[0]] = values
    else:
        assert isinstance(target, TargetLong)
        long = read_table(target.table, "target long table")
        _column(table, target.row_col, "the row id the long table refers to", "TargetLong(row_col)")
        row_ids = _labels(table.column(target.row_col))
        if len(set(row_ids)) != n:
            raise ValueError(
                f"row id column {target.row_col!r} has duplicates; give each logged row its own id"
            )
        where = {r: i for i, r in enumerate(row_ids)}
        lr = _labels(_column(long, target.row_col, "the logged row's id", "TargetLong(row_col)"))
        actions = _column(long, target.action_col, "the candidate's actions", "TargetLong(action_col)")
        la = _indices(_labels(actions), data.space, target.action_col)
        lp = _numbers(
            _column(long, target.prob_col, "the candidate's probability", "TargetLong(prob_col)"),
            target.prob_col,
            "target probability",
        )
        _probs(lp, f"long table column {target.prob_col!r}")
        rows = np.fromiter((where.get(r, -1) for r in lr), np.int64, len(lr))
        if (rows < 0).any() or (la < 0).any():
            raise ValueError(
                f"long table: {_bad_rows((rows < 0) | (la < 0))} name a row id not in the logged table "
                f"or no action; every row's {target.row_col!r} must be a logged row and its action a label"
            )
        if len(set(zip(rows.tolist(), la.tolist(), strict=True))) != len(rows):
            raise ValueError("long table: a (row id, action) pair appears twice; give each once")
        probs[rows, la] = lp
    over = probs.sum(axis=1) > 1 + 1e-6
    if over.any():
        raise ValueError(
            f"target probabilities: {_bad_rows(over)} sum to more than 1 over the actions; "
            "each row's probabilities must sum to 1 or less (the rest is no action)"
        )
    return TargetPolicy.stochastic(probs, name=name)


def _logged_columns(
    table: pa.Table, action_col: str, reward_col: str, propensity_col: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The logged action labels, rewards and propensities, each checked: no null action, a finite
    reward, a propensity in (0, 1]."""
    logged_labels = _labels(_column(table, action_col, "the logged action", "action_col"))
    if (missing := np.array([x is None for x in logged_labels])).any():
        raise ValueError(
            f"action column {action_col!r}: {_bad_rows(missing)} null; every logged row needs its action"
        )
    reward = _numbers(_column(table, reward_col, "the reward", "reward_col"), reward_col, "reward")
    if (bad := ~np.isfinite(reward)).any():
        raise ValueError(
            f"reward column {reward_col!r}: {_bad_rows(bad)} null or not finite; fill or drop them"
        )
    prop = _numbers(
        _column(table, propensity_col, "the logging propensity", "propensity_col"),
        propensity_col,
        "propensity",
    )
    if (bad := ~np.isfinite(prop) | (prop <= 0) | (prop > 1)).any():
        raise ValueError(
            f"propensity column {propensity_col!r}: {_bad_rows(bad)} not in (0, 1]; it must be the logging "
            "policy's probability of the action it took (rows logged with probability 0 cannot be used: drop them)"
        )
    return logged_labels, reward, prop


def _features(table: pa.Table, feature_cols: Sequence[str]) -> np.ndarray | None:
    """The feature matrix (None without feature columns); nulls take the column's mean."""
    if not feature_cols:
        return None
    mat = np.column_stack(
        [_numbers(_column(table, c, "a feature", "feature_cols"), c, "feature") for c in feature_cols]
    )
    if np.isinf(mat).any():
        raise ValueError(
            f"feature columns: {_bad_rows(np.isinf(mat).any(axis=1))} infinite; give finite values"
        )
    with warnings.catch_warnings():  # an all-null column has no mean: it takes 0
        warnings.simplefilter("ignore", RuntimeWarning)
        col_mean = np.nan_to_num(np.nanmean(mat, axis=0))
    return np.where(np.isnan(mat), col_mean, mat)


def logged_from_table(
    table: TableSource,
    *,
    action_col: str,
    reward_col: str,
    propensity_col: str,
    target: Target,
    feature_cols: Sequence[str] = (),
    group_col: str | None = None,
    segment_col: str | None = None,
    actions: ActionSpace | Sequence[str] | None = None,
    name: str = "target",
) -> tuple[LoggedData, TargetPolicy]:
    """The table as evals.ope's inputs: the logged data (the reward in its revenue_90d slot) and the
    candidate on those rows. Feature nulls take the column's mean (as LoggedData.from_arrow does)."""
    table = read_table(table)
    if table.num_rows == 0:
        raise ValueError("the table has no rows: give at least one logged decision")
    logged_labels, reward, prop = _logged_columns(table, action_col, reward_col, propensity_col)
    space = _space(logged_labels, actions)
    feats = _features(table, feature_cols)
    groups = (
        _labels(_column(table, group_col, "the cross-fitting group", "group_col"))
        if group_col
        else np.arange(table.num_rows).astype(str).astype(object)
    )
    segments = (
        _labels(_column(table, segment_col, "the segment", "segment_col"))
        if segment_col
        else np.array(["all"] * table.num_rows, dtype=object)
    )
    data = LoggedData(
        actions=_indices(logged_labels, space, action_col),
        propensities=prop,
        revenue_90d=reward,
        converted_14d=np.zeros(table.num_rows),
        customer_ids=groups,
        segments=np.array([s if s is not None else "all" for s in segments], dtype=object),
        features=feats,
        space=space,
    )
    return data, _target_policy(table, target, data, name)


def estimate_from_table(
    table: TableSource,
    *,
    action_col: str,
    reward_col: str,
    propensity_col: str,
    target: Target,
    feature_cols: Sequence[str] = (),
    group_col: str | None = None,
    actions: ActionSpace | Sequence[str] | None = None,
    estimators: Sequence[EstimatorName] | None = None,
    n_bootstrap: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    name: str = "target",
) -> list[Estimate]:
    """IPS, SNIPS and DR (default: every one the target's shape allows) of the candidate's value per
    logged row, each with a percentile-bootstrap interval at level 1 - alpha, reproducible from
    `seed`. Each Estimate's `metric` is `reward_col`."""
    wanted = list(estimators) if estimators is not None else list(ESTIMATORS)
    unknown = [e for e in wanted if e not in ESTIMATORS]
    if unknown or not wanted:
        raise ValueError(f"estimators {unknown or wanted}: choose among {', '.join(ESTIMATORS)}")
    if isinstance(target, TargetLoggedProb) and "dr" in wanted:
        if estimators is not None:
            raise ValueError(
                "DR needs the candidate's probability of every action, not only of the logged one: give "
                "TargetProbs or TargetLong (or TargetAction for a deterministic candidate), or estimate "
                "with ips and snips only"
            )
        wanted.remove("dr")
    data, policy = logged_from_table(
        table,
        action_col=action_col,
        reward_col=reward_col,
        propensity_col=propensity_col,
        target=target,
        feature_cols=feature_cols,
        group_col=group_col,
        actions=actions,
        name=name,
    )
    out = []
    for i, key in enumerate(wanted):
        est: Estimator = {"ips": IPS, "snips": SNIPS, "dr": DoublyRobust}[key]("revenue_90d")
        result = est.estimate(data, policy, n_bootstrap=n_bootstrap, alpha=alpha, seed=seed + i)
        out.append(dataclasses.replace(result, metric=reward_col))
    return out
