"""Random choices keyed by what a row is, not by where it stands.

A retrain sees yesterday's log plus today's touches, in another order and with other customers in the
segments. Drawn by position (`rng.choice(len(rows), k)`, a permutation of the customers), every sample
of the training (the rows kept under `max_rows`, the DR pairs, each member's rows, its bootstrap
weights, the cross-fitting folds) is a new draw, so a retrain on one more day of data is a retrain
with another seed: the decisions churn by the seed's noise, which hides what the new day taught.
Keyed by the customer id, the touch's time and the action, every earlier choice stays and only the
new rows draw their own; what moves the model is the data.

A customer's key is 8 bytes of blake2b of its id; a row's key mixes it (splitmix64's finaliser) with
the touch's time and action. The draws are functions of (key, seed, purpose), so a seed still
changes all of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
# Poisson(1)'s CDF at 0, 1, 2, ...: a uniform below entry j draws j (past the last: its length)
_POISSON1_CDF = np.cumsum([np.exp(-1.0) / np.prod(np.arange(1, j + 1, dtype=np.float64)) for j in range(20)])


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, element-wise on uint64 (wrapping)."""
    x = np.asarray(x).astype(np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))  # type: ignore[no-any-return]


def combine(key: np.ndarray, *parts: int | np.ndarray) -> np.ndarray:
    """A key per element of `key`, mixed with each part in turn (ints or arrays aligned with it)."""
    h = mix(key)
    for p in parts:
        h = mix(h ^ mix(np.asarray(p).astype(np.int64).astype(np.uint64)))
    return h


def string_keys(values: Sequence[str] | np.ndarray) -> np.ndarray:
    """A uint64 key per string (blake2b, 8 bytes): the same id gets the same key in every process."""
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(str(v).encode(), digest_size=8).digest(), "little") for v in values),
        dtype=np.uint64,
        count=len(values),
    )


def uniform(keys: np.ndarray) -> np.ndarray:
    """A float in [0, 1) per key (its top 53 bits)."""
    return (np.asarray(keys, dtype=np.uint64) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def smallest(keys: np.ndarray, k: int) -> np.ndarray:
    """The positions of the k smallest keys, in position order: a uniform sample of k positions in
    which a position, once kept, stays kept when rows are added (unless k new ones rank before it)."""
    keys = np.asarray(keys)
    if len(keys) <= k:
        return np.arange(len(keys))
    return np.sort(np.argpartition(keys, k - 1)[:k])


def poisson1(keys: np.ndarray) -> np.ndarray:
    """One Poisson(1) draw per key (inverse CDF of its uniform): a bootstrap weight."""
    return np.searchsorted(_POISSON1_CDF, uniform(keys), side="right").astype(np.float64)  # type: ignore[no-any-return]
