"""The direct-method reward models of the doubly robust estimator.

`GBMRewardModel` (the default): LightGBM on the row's features and the action, cross-fitted by
customer, giving each logged row its own prediction for every action (the table has one row per
logged row). A reward model as good as the learned policy's own is what makes DR's paired interval
narrow: the correction term only has to carry what the model misses.

`BucketRewardModel` (numpy only, fit in one pass):

q(x, a) = mean reward of action a in x's feature cell, shrunk towards the action's mean, which is
itself shrunk towards the overall mean:

    q(a)    = (sum_a r + prior * mean(r)) / (n_a + prior)
    q(c, a) = (sum_{c,a} r + prior * q(a)) / (n_{c,a} + prior)

A feature cell is the combination of each feature's quantile bucket (up to `max_features` features,
`n_buckets` buckets each). With no features there is one cell and q is the shrunk per-action mean.

`fit_crossed` cross-fits (Chernozhukov et al., 2018): customers are split into `n_folds` folds and
each row's q comes from the model fit on the other folds, so a row's own outcome never enters its
own q. Fit in-sample, q leans towards the row's outcome in sparse cells and DR's correction term
shrinks with it, which biases DR upwards (bench/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True, eq=False)
class FittedRewardModel:
    table: np.ndarray  # n_cells x n_actions
    cells: np.ndarray  # cell of each logged row


class RewardModel(Protocol):
    """What DoublyRobust needs: per logged row, a predicted reward for every action, cross-fitted."""

    def fit_crossed(
        self,
        actions: np.ndarray,
        rewards: np.ndarray,
        features: np.ndarray | None,
        n_actions: int,
        groups: np.ndarray,
    ) -> FittedRewardModel: ...


def _folds(groups: np.ndarray, n_folds: int) -> tuple[np.ndarray, int]:
    """Fold of each row: customers shuffled by a fixed seed, dealt round-robin into folds."""
    _, group = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    n_groups = int(group.max()) + 1 if len(group) else 0
    return np.random.default_rng(0).permutation(max(n_groups, 1))[group.ravel()] % n_folds, n_groups


@dataclass(frozen=True)
class GBMRewardModel:
    """LightGBM regression of the reward on (features, action), cross-fitted by customer: each row's
    predictions come from the model fit on the other folds' customers, so a row's own outcome never
    enters its own q (fit in-sample, q leans towards the outcome and DR's correction shrinks with it).
    Squared loss: the predictions are mean-calibrated, which DR's direct part needs."""

    n_folds: int = 5
    rounds: int = 80
    learning_rate: float = 0.12
    leaves: int = 15
    min_leaf: int = 100
    max_train_rows: int = 50_000  # per fold, sampled: the model's accuracy saturates well before
    threads: int = 2

    def fit_crossed(
        self,
        actions: np.ndarray,
        rewards: np.ndarray,
        features: np.ndarray | None,
        n_actions: int,
        groups: np.ndarray,
    ) -> FittedRewardModel:
        from core.openmp import lightgbm as _lightgbm

        lightgbm = _lightgbm()

        n = len(actions)
        feats = np.zeros((n, 0)) if features is None else np.asarray(features, dtype=np.float64)
        folds, n_groups = _folds(groups, self.n_folds)
        if n_groups < self.n_folds or n < 10 * self.min_leaf:
            return BucketRewardModel().fit_crossed(actions, rewards, features, n_actions, groups)
        x = np.column_stack([feats, actions]).astype(np.float32)
        table = np.empty((n, n_actions))
        config = {
            "objective": "regression",
            "learning_rate": self.learning_rate,
            "num_leaves": self.leaves,
            "min_data_in_leaf": self.min_leaf,
            "seed": 0,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": self.threads,
            "verbose": -1,
        }
        for k in range(self.n_folds):
            train, held = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
            if len(train) > self.max_train_rows:
                train = np.sort(np.random.default_rng(k).choice(train, self.max_train_rows, replace=False))
            data = lightgbm.Dataset(
                x[train], rewards[train], categorical_feature=[x.shape[1] - 1], free_raw_data=True
            )
            booster = lightgbm.train(config, data, num_boost_round=self.rounds)
            # rows with the same features (a customer's touches share their customer's) are predicted once
            uniq, inv = np.unique(x[held, :-1], axis=0, return_inverse=True)
            grid = np.repeat(np.column_stack([uniq, np.zeros(len(uniq), np.float32)]), n_actions, axis=0)
            grid[:, -1] = np.tile(np.arange(n_actions, dtype=np.float32), len(uniq))
            pred = np.asarray(booster.predict(grid, num_threads=self.threads), dtype=np.float64)
            table[held] = pred.reshape(len(uniq), n_actions)[inv.ravel()]
        return FittedRewardModel(table=table, cells=np.arange(n, dtype=np.int64))


@dataclass(frozen=True)
class BucketRewardModel:
    n_buckets: int = 4
    prior: float = 10.0
    max_features: int = 3
    n_folds: int = 5

    def cells(self, features: np.ndarray | None, n: int) -> tuple[np.ndarray, int]:
        if features is None or features.shape[1] == 0:
            return np.zeros(n, dtype=np.int64), 1
        cells = np.zeros(n, dtype=np.int64)
        n_cells = 1
        for j in range(min(features.shape[1], self.max_features)):
            col = features[:, j]
            edges = np.unique(np.quantile(col, np.linspace(0, 1, self.n_buckets + 1)[1:-1]))
            bucket = np.searchsorted(edges, col, side="right")
            cells = cells * (len(edges) + 1) + bucket
            n_cells *= len(edges) + 1
        return cells, n_cells

    def fit(
        self, actions: np.ndarray, rewards: np.ndarray, features: np.ndarray | None, n_actions: int
    ) -> FittedRewardModel:
        n = len(actions)
        cells, n_cells = self.cells(features, n)
        table = self._table(actions, rewards, cells, n_cells, n_actions)
        return FittedRewardModel(table=table, cells=cells)

    def fit_crossed(
        self,
        actions: np.ndarray,
        rewards: np.ndarray,
        features: np.ndarray | None,
        n_actions: int,
        groups: np.ndarray,
    ) -> FittedRewardModel:
        """Cross-fitted by group (customer): fold k's table is fit on the rows of the other folds.
        The result stacks the folds' tables (n_folds x n_cells rows) and each row's cell points into
        its own fold's block, so it is used exactly like an in-sample fit. With fewer groups than
        folds it is the in-sample fit."""
        n = len(actions)
        cells, n_cells = self.cells(features, n)
        folds, n_groups = _folds(groups, self.n_folds)
        if n_groups < self.n_folds:
            return self.fit(actions, rewards, features, n_actions)
        tables = np.empty((self.n_folds, n_cells, n_actions))
        for k in range(self.n_folds):
            train = folds != k
            tables[k] = self._table(actions[train], rewards[train], cells[train], n_cells, n_actions)
        return FittedRewardModel(table=tables.reshape(-1, n_actions), cells=folds * n_cells + cells)

    def _table(
        self, actions: np.ndarray, rewards: np.ndarray, cells: np.ndarray, n_cells: int, n_actions: int
    ) -> np.ndarray:
        overall = float(rewards.mean()) if len(rewards) else 0.0
        a_sum = np.bincount(actions, weights=rewards, minlength=n_actions)
        a_cnt = np.bincount(actions, minlength=n_actions)
        q_action = (a_sum + self.prior * overall) / (a_cnt + self.prior)
        key = cells * n_actions + actions
        c_sum = np.bincount(key, weights=rewards, minlength=n_cells * n_actions).reshape(n_cells, n_actions)
        c_cnt = np.bincount(key, minlength=n_cells * n_actions).reshape(n_cells, n_actions)
        return (c_sum + self.prior * q_action) / (c_cnt + self.prior)  # type: ignore[no-any-return]
