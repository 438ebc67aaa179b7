"""Exploration: pick one allowed action per customer from the model's values, with a known propensity.

`choose(values, allowed, customer_ids, seed=...)` builds each customer's probability mass function
(PMF) over their allowed actions and draws from it:

- `epsilon` (default): 1 - epsilon + epsilon/k on the best-valued action, epsilon/k on each of the
  other k - 1 allowed actions: Vowpal Wabbit's `--cb_explore_adf --epsilon` PMF;
- `thompson` (the product's default): each member of the model's ensemble (bootstraps of the
  customers) votes for the action it values best; `share` of the mass follows the votes, the rest
  goes to the greedy action, and `floor` is spread over every allowed action. Where the members
  agree there is next to no exploration; where they disagree, the draw goes to the actions some
  bootstrap of the data thinks best: exploration is spent where the model is unsure;
- `softmax`: p proportional to exp((v - v_max) / (temperature x |v_max|)) (the temperature is relative to
  the customer's best value, so it means the same for revenue and for conversion), mixed with
  `floor` x uniform so that no allowed action's probability underflows to 0.

With k > 1 allowed actions every allowed action has 0 < p < 1; with k = 1 it is chosen with p = 1;
with none, no action (-1, propensity 0). The draw is a hash of (seed, customer_id): the same inputs
and seed give the same choice in any process, and one customer's draw does not depend on who else
is in the batch. Ties on the best value go to the lowest action index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Method = Literal["thompson", "epsilon", "softmax"]
DEFAULT_EPSILON = 0.05
DEFAULT_TEMPERATURE = 0.05
SOFTMAX_FLOOR = 0.01
THOMPSON_SHARE = 0.1
THOMPSON_FLOOR = 0.005
NO_ACTION = -1


@dataclass(frozen=True, eq=False)
class Choice:
    actions: np.ndarray  # (n,) catalog index chosen, -1 when nothing is allowed
    propensity: np.ndarray  # (n,) probability of the chosen action under the PMF (0 for no action)
    pmf: np.ndarray  # (n, n_actions) 0 outside the allowed set
    greedy: np.ndarray  # (n,) best-valued allowed action (-1 when none)


def uniform_draws(customer_ids: Sequence[str] | np.ndarray, seed: int) -> np.ndarray:
    """One number in [0, 1) per customer from sha256(seed, customer_id)."""
    out = np.empty(len(customer_ids), dtype=np.float64)
    for i, cid in enumerate(customer_ids):
        d = hashlib.sha256(f"{seed}|{cid}".encode()).digest()
        out[i] = int.from_bytes(d[:7], "big") / float(1 << 56)
    return out


def pmf(
    values: np.ndarray,
    allowed: np.ndarray,
    *,
    method: Method = "epsilon",
    epsilon: float = DEFAULT_EPSILON,
    temperature: float = DEFAULT_TEMPERATURE,
    floor: float = SOFTMAX_FLOOR,
    members: np.ndarray | None = None,
    share: float = THOMPSON_SHARE,
) -> tuple[np.ndarray, np.ndarray]:
    """(PMF (n, n_actions), greedy action (n,)) over the allowed actions. `members` (thompson):
    (k, n, n_actions) each ensemble member's values; the greedy action is `values`' best."""
    if not 0 < epsilon < 1 and method == "epsilon":
        raise ValueError(f"epsilon must be in (0, 1), got {epsilon}")
    if method == "softmax" and not (temperature > 0 and 0 < floor < 1):
        raise ValueError("softmax needs temperature > 0 and 0 < floor < 1")
    if method not in ("thompson", "epsilon", "softmax"):
        raise ValueError(f"unknown exploration {method!r}; valid: thompson, epsilon, softmax")
    if method == "thompson" and not (members is not None and 0 <= share < 1 and 0 < floor < 1 - share):
        raise ValueError("thompson needs the members' values, 0 <= share < 1 and 0 < floor < 1 - share")
    allowed = np.asarray(allowed, dtype=bool)
    v = np.where(allowed, np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-np.inf), -np.inf)
    k = allowed.sum(axis=1)
    any_ok = k > 0
    greedy = np.where(any_ok, v.argmax(axis=1), NO_ACTION)
    kk = np.maximum(k, 1)[:, None].astype(np.float64)
    if method == "thompson":
        p = _thompson(np.asarray(members), allowed, greedy, kk, share, floor)
    elif method == "epsilon":
        p = np.where(allowed, epsilon / kk, 0.0)
        rows = np.flatnonzero(any_ok)
        p[rows, greedy[rows]] += 1.0 - epsilon
    else:
        best = np.where(any_ok, v.max(axis=1, initial=-np.inf, where=allowed), 0.0)
        scale = temperature * np.maximum(np.abs(best), 1e-12)
        z = np.where(allowed, np.exp(np.clip((v - best[:, None]) / scale[:, None], -700, 0)), 0.0)
        soft = z / np.maximum(z.sum(axis=1, keepdims=True), 1e-300)
        p = np.where(allowed, (1.0 - floor) * soft + floor / kk, 0.0)
    p[k == 1] = allowed[k == 1].astype(np.float64)  # one allowed action: it is the decision
    return p, greedy


def _thompson(
    members: np.ndarray, allowed: np.ndarray, greedy: np.ndarray, kk: np.ndarray, share: float, floor: float
) -> np.ndarray:
    """(1 - share - floor) on the greedy action, `share` by the members' votes, `floor` uniform."""
    n, n_actions = allowed.shape
    if members.ndim != 3 or members.shape[1:] != (n, n_actions):
        raise ValueError(f"members must be (k, {n}, {n_actions}), got {members.shape}")
    v = np.where(allowed[None], np.nan_to_num(members, nan=-np.inf), -np.inf)
    votes = np.zeros((n, n_actions))
    rows = np.arange(n)
    for k in range(len(members)):
        np.add.at(votes, (rows, v[k].argmax(axis=1)), 1.0 / len(members))
    votes = np.where(allowed, votes, 0.0)
    p = np.where(allowed, floor / kk + share * votes, 0.0)
    ok = np.flatnonzero(allowed.any(axis=1))
    p[ok, greedy[ok]] += 1.0 - floor - share
    return p / np.maximum(p.sum(axis=1, keepdims=True), 1e-300)


def choose(
    values: np.ndarray,
    allowed: np.ndarray,
    customer_ids: Sequence[str] | np.ndarray,
    *,
    seed: int,
    method: Method = "epsilon",
    epsilon: float = DEFAULT_EPSILON,
    temperature: float = DEFAULT_TEMPERATURE,
    floor: float = SOFTMAX_FLOOR,
    members: np.ndarray | None = None,
    share: float = THOMPSON_SHARE,
) -> Choice:
    """Draw one allowed action per customer from the PMF; see the module docstring."""
    if len(customer_ids) != np.asarray(allowed).shape[0]:
        raise ValueError(f"{len(customer_ids)} customer ids for {np.asarray(allowed).shape[0]} rows")
    p, greedy = pmf(
        values,
        allowed,
        method=method,
        epsilon=epsilon,
        temperature=temperature,
        floor=floor,
        members=members,
        share=share,
    )
    u = uniform_draws(customer_ids, seed)
    cdf = np.cumsum(p, axis=1)
    total = cdf[:, -1] if p.shape[1] else np.zeros(len(u))
    idx = (cdf < (u * total)[:, None]).sum(axis=1)
    idx = np.minimum(idx, max(p.shape[1] - 1, 0))
    # guard against rounding landing on a zero-probability column: step to the next allowed one
    bad = (total > 0) & (p[np.arange(len(idx)), idx] == 0) if p.shape[1] else np.zeros(len(u), bool)
    for i in np.flatnonzero(bad):
        idx[i] = int(np.flatnonzero(p[i] > 0)[-1])
    actions = np.where(total > 0, idx, NO_ACTION)
    prop = np.where(actions >= 0, p[np.arange(len(actions)), np.maximum(actions, 0)], 0.0)
    return Choice(actions=actions.astype(np.int64), propensity=prop, pmf=p, greedy=greedy.astype(np.int64))
