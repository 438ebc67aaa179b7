"""The DR-learner's pieces (learner "dr", trained in model._train_dr): a value model fit to
doubly-robust scores of each (logged row, action of its segment's bank) pair instead of to the
logged outcome of the one action taken.

1. Cross-fitting: the customers are split into `folds`; a reward model fit on the other folds'
   rows predicts mu(x_i, a) for every held-out row i and every action a of its bank, so no row's
   own outcome is in the prediction its score is built on.
2. The DR score of a pair: Gamma_i(a) = mu(x_i, a) + 1{a = a_i} (y_i - mu(x_i, a_i)) / p_i, with
   p_i the logged propensity of the action taken, clipped below at `floor`. Its expectation is
   the true value of a at x_i when either mu or the propensities are right: the direct method's
   bias is corrected by the logged outcome, reweighted by how rarely the log took that action.
3. A second-stage regression on the pairs' features with target Gamma (l2: Gamma can be
   negative) whose predictions are the action values.

The pairs of a log are rows x bank actions (8-9 per segment); `bank_pairs` samples them uniformly
(independently of which action was logged and of its outcome) when there are more than the budget,
which leaves the second stage's target unbiased and bounds its memory.
"""

from __future__ import annotations

import numpy as np

from agent.learned import keyed
from agent.learned.actions import ActionCatalog

# Logged propensities below this count as this, which bounds a single outcome's weight in Gamma at
# 1/floor. A log's rarest actions have tiny propensities: unclipped, one revenue outcome enters the
# regression magnified by orders of magnitude and the trees chase it (the argmax then picks the
# luckiest action). Clipping biases only the correction of the clipped rows, shrunk towards the
# reward model by p / floor, and only by the reward model's error there (the correction is zero in
# expectation when mu is right). The value was measured on the truth against a lower one
# (bench/README.md).
PROPENSITY_FLOOR = 0.05
DR_FOLDS = 2  # cross-fitting folds (by customer)
DR_MAX_PAIRS = 1_000_000  # (row, action) pairs the second stage trains on, sampled beyond
# The second stage's min_data_in_leaf as a share of the pairs each member trains on (up to
# DR_MAX_PAIRS // members): the DR scores are so noisy that only coarse leaves (a few per tree)
# average the corrections out; finer leaves overfit them (the settings tried are in bench/README.md).
DR_MIN_LEAF_SHARE = 0.25


def dr_pseudo_outcomes(
    mu: np.ndarray,
    logged: np.ndarray,
    reward: np.ndarray,
    propensity: np.ndarray,
    floor: float = PROPENSITY_FLOOR,
) -> np.ndarray:
    """Gamma per pair: `mu` the cross-fitted reward model's prediction for the pair's action,
    `logged` whether that action is the one the row's log took, `reward` the row's logged outcome
    and `propensity` its logged propensity (all aligned per pair)."""
    if not 0 < floor <= 1:
        raise ValueError(f"the propensity floor must be in (0, 1], got {floor}")
    mu = np.asarray(mu, dtype=np.float64)
    weight = np.asarray(logged, dtype=np.float64) / np.maximum(
        np.asarray(propensity, dtype=np.float64), floor
    )
    return mu + weight * (np.asarray(reward, dtype=np.float64) - mu)  # type: ignore[no-any-return]


def customer_folds(customer_keys: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold of each customer key (one per row, agent.learned.keyed), drawn from the key and the
    seed: all of a customer's rows are held out together, and a customer keeps its fold when others
    join the log."""
    if folds < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got {folds}")
    return (keyed.combine(customer_keys, seed, 7919) % np.uint64(folds)).astype(np.int64)  # type: ignore[no-any-return]


def bank_pairs(
    segments: np.ndarray, cat: ActionCatalog, max_pairs: int, seed: int, row_keys: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(row index, action) of every action of each row's segment's bank (`segments` per row),
    sampled uniformly to `max_pairs` when there are more, keyed by the row's key (one per row,
    agent.learned.keyed), the action and `seed`; sorted by row."""
    rows, actions = np.nonzero(cat.segment_mask(segments))
    if len(rows) > max_pairs:
        keep = keyed.smallest(keyed.combine(np.asarray(row_keys)[rows], actions, seed, 104729), max_pairs)
        rows, actions = rows[keep], actions[keep]
    return rows.astype(np.int64), actions.astype(np.int64)
