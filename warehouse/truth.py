"""Ground truth of the synthetic response model.

The generator draws each customer's latent response parameters, then draws the outcome of every
logged marketing touch from `expected_reward`. The eval harness calls the same function to compute
the true value of any policy, so it can check off-policy estimates against the truth, and
`organic_reward` for what each customer does with no contact at all (a policy's lift is the
difference).
Policies never read this module's outputs: they live in `warehouse.paths.truth_dir()`, apart from
the raw data that dbt reads.

An action is (template_id, discount_pct), discount on a grid of 5 within the template's
[min_discount_pct, max_discount_pct] range in the action bank (`action_grid()`).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.errors import TruthMissing
from warehouse.paths import DBT_DIR, truth_dir

ACTION_BANK_CSV = DBT_DIR / "seeds" / "action_bank.csv"
CHANNELS = ("email", "sms", "push")
SITUATIONS = ("high_value_lapse_risk", "new_users_first_week_intent", "churn_rescue_nps")
PARAMS_FILE = "customer_params.parquet"
EXPECTED_FILE = "expected_rewards.parquet"
# expected_rewards.parquet (customers x actions) is written only up to this many customers: above
# it the file would be large (26 actions per customer); call expected_reward() on the params instead.
EXPECTED_REWARDS_MAX_CUSTOMERS = 200_000

# Per-template effect on the conversion logit: a base appeal, and the bonus when the template's
# segment matches the customer's situation (a win-back for a lapsing customer, onboarding for a
# new user, customer-success follow-up for a detractor). A mismatch costs MISMATCH_PENALTY.
TEMPLATE_APPEAL: dict[str, tuple[float, float]] = {
    "winback_soft": (0.0, 1.1),
    "winback_sms": (-0.1, 1.2),
    "winback_push": (-0.3, 0.7),
    "vip_checkin": (0.1, 0.9),
    "onboarding_tips": (0.0, 0.8),
    "onboarding_push": (-0.2, 0.6),
    "first_order_offer": (0.1, 1.2),
    "first_order_sms": (0.0, 1.1),
    "cs_followup_offer": (0.0, 1.3),
    "cs_followup": (0.1, 1.0),
    "cs_apology_sms": (-0.1, 1.1),
    "cs_checkin_push": (-0.3, 0.6),
}
MISMATCH_PENALTY = -0.4
DISCOUNT_COST_PER_PCT = 0.01  # revenue per conversion shrinks by the discount given


@dataclass(frozen=True)
class Action:
    segment: str
    template_id: str
    channel: str
    discount_pct: float

    @property
    def key(self) -> str:
        return f"{self.template_id}@{int(self.discount_pct)}"


@lru_cache(maxsize=2)
def action_grid(action_bank_csv: Path = ACTION_BANK_CSV) -> tuple[Action, ...]:
    """Every action of the bank: each template with each discount on a grid of 5 in its range."""
    actions = []
    with open(action_bank_csv, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            lo, hi = float(row["min_discount_pct"]), float(row["max_discount_pct"])
            for d in np.arange(np.ceil(lo / 5) * 5, hi + 1e-9, 5.0):
                actions.append(Action(row["segment"], row["template_id"], row["channel"], float(d)))
    return tuple(actions)


def _template_table() -> dict[str, tuple[str, str]]:
    return {a.template_id: (a.segment, a.channel) for a in action_grid()}


def _column(params: Any, name: str) -> np.ndarray:
    if isinstance(params, pa.Table):
        return params.column(name).to_numpy(zero_copy_only=False)
    if isinstance(params, Mapping):
        return np.asarray(params[name])
    raise TypeError("params must be a pyarrow Table or a mapping of column name -> array")


def string_codes(values: Any) -> tuple[np.ndarray, list[str]]:
    """Strings -> (int codes, distinct values), via Arrow's dictionary encoding (fast at millions).
    A pyarrow DictionaryArray is used as it is."""
    if isinstance(values, pa.DictionaryArray):
        return values.indices.to_numpy(zero_copy_only=False).astype(np.int64), values.dictionary.to_pylist()
    arr = (
        values
        if isinstance(values, pa.Array | pa.ChunkedArray)
        else pa.array(np.asarray(values, dtype=object))
    )
    enc = arr.cast(pa.string()).dictionary_encode()
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), enc.dictionary.to_pylist()


def expected_reward(
    params: pa.Table | Mapping[str, Any], template_ids: Any, discount_pcts: Any
) -> tuple[np.ndarray, np.ndarray]:
    """True expected (conversion within 14 days, revenue over 90 days) of each row's action.

    `params` holds one row per decision (a customer's latent parameters, as in
    customer_params.parquet, repeated as needed); `template_ids` and `discount_pcts` are aligned
    with it. Vectorized: 10^6 rows take well under a second.
    """
    discount = np.asarray(discount_pcts, dtype=np.float64)
    t_codes, t_names = string_codes(template_ids)
    n = len(t_codes)
    if len(discount) != n:
        raise ValueError("template_ids and discount_pcts must have the same length")
    templates = _template_table()
    unknown = set(t_names) - set(templates)
    if unknown:
        raise ValueError(f"unknown template_id(s): {sorted(unknown)}")

    base = _column(params, "base_logit").astype(np.float64)
    sens = _column(params, "discount_sensitivity").astype(np.float64)
    order_value = _column(params, "expected_order_value").astype(np.float64)
    s_codes, s_names = string_codes(
        params["situation"] if isinstance(params, Mapping) else params.column("situation")
    )
    if len(base) != n:
        raise ValueError(f"params has {len(base)} rows but {n} actions were given")

    # per-template lookups, gathered per row: appeal, fit (or the mismatch penalty), channel affinity
    appeal = np.array([TEMPLATE_APPEAL[t][0] for t in t_names])
    fit = np.array([TEMPLATE_APPEAL[t][1] for t in t_names])
    seg_code = np.array(
        [s_names.index(templates[t][0]) if templates[t][0] in s_names else -1 for t in t_names]
    )
    chan = np.array([CHANNELS.index(templates[t][1]) for t in t_names], dtype=np.int64)
    affinity = np.column_stack([_column(params, f"affinity_{c}").astype(np.float64) for c in CHANNELS])
    logit = base + appeal[t_codes] + np.where(s_codes == seg_code[t_codes], fit[t_codes], MISMATCH_PENALTY)
    logit += affinity[np.arange(n), chan[t_codes]]
    # a discount lifts conversion with diminishing returns, more for discount-sensitive customers
    logit += sens * np.sqrt(discount / 5.0)
    conversion = 1.0 / (1.0 + np.exp(-logit))
    revenue = conversion * order_value * (1.0 - DISCOUNT_COST_PER_PCT * discount)
    return conversion, revenue


def organic_reward(params: pa.Table | Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """True expected (conversion within 14 days, revenue over 90 days) of each customer left alone.

    A customer nobody contacts converts with the probability of their base logit alone (no template
    appeal, segment fit, channel affinity or discount) and then spends their expected order value,
    undiscounted. It reads the latent parameters the generator already drew and draws nothing.
    """
    base = _column(params, "base_logit").astype(np.float64)
    order_value = _column(params, "expected_order_value").astype(np.float64)
    conversion = 1.0 / (1.0 + np.exp(-base))
    return conversion, conversion * order_value


def expected_rewards_table(params: pa.Table) -> pa.Table:
    """customer_id x action -> expected conversion and revenue (long format)."""
    actions = action_grid()
    n = params.num_rows
    idx = np.repeat(np.arange(n), len(actions))
    rep = params.take(pa.array(idx))
    tids = np.tile(np.array([a.template_id for a in actions], dtype=object), n)
    discs = np.tile(np.array([a.discount_pct for a in actions]), n)
    conv, rev = expected_reward(rep, tids, discs)
    return pa.table(
        {
            "customer_id": rep.column("customer_id"),
            "template_id": pa.array(tids, pa.string()),
            "discount_pct": pa.array(discs, pa.float64()),
            "expected_conversion": pa.array(conv, pa.float64()),
            "expected_revenue_90d": pa.array(rev, pa.float64()),
        }
    )


@dataclass(frozen=True)
class Truth:
    params: pa.Table
    expected_rewards: pa.Table | None
    meta_dir: Path


def not_in_truth(missing: Sequence[str], directory: Path | None = None) -> TruthMissing:
    """The one line for warehouse customers the truth has no row for: it was generated with other
    data (NBA_TRUTH_DIR elsewhere, or make seed with other CUSTOMERS/SEED and no build since)."""
    shown = ", ".join(list(dict.fromkeys(str(c) for c in missing))[:3])
    return TruthMissing(
        f"the ground truth at {directory or truth_dir()} (NBA_TRUTH_DIR) has no row for customers of the "
        f"warehouse (e.g. {shown}): it belongs to other generated data; run `make build` to rebuild the "
        "warehouse from the data it belongs to, or point NBA_TRUTH_DIR at this warehouse's truth"
    )


def load_truth(directory: Path | None = None) -> Truth:
    """Read the ground truth written by the generator (evals only; never a policy)."""
    directory = directory or truth_dir()
    params_path = directory / PARAMS_FILE
    if not params_path.exists():
        raise TruthMissing(
            f"no ground truth at {params_path}: the evals score policies against the synthetic "
            "generator's truth; run `make seed` (or point NBA_TRUTH_DIR at a generated warehouse's truth)"
        )
    expected_path = directory / EXPECTED_FILE
    expected = pq.read_table(expected_path) if expected_path.exists() else None
    return Truth(params=pq.read_table(params_path), expected_rewards=expected, meta_dir=directory)
