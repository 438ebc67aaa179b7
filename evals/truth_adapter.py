"""Adapt the generator's ground truth (warehouse/truth.py) to the harness's truth interface:
(customer_ids, template_ids, discount_pcts) -> (expected conversion, expected revenue_90d), and
customer_ids -> the same pair with no contact at all (the organic response a lift is measured over)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from evals.ope import ExpectedRewardFn
from warehouse.truth import not_in_truth

# customer_ids -> (expected conversion, expected revenue_90d) of each customer left alone
OrganicRewardFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _rows_of(params: pa.Table) -> Callable[[np.ndarray], pa.Array]:
    row_of = {str(c): i for i, c in enumerate(params.column("customer_id").to_pylist())}

    def rows(customer_ids: np.ndarray) -> pa.Array:
        missing = [c for c in customer_ids[:1000] if str(c) not in row_of]
        if missing:
            raise not_in_truth(missing)
        return pa.array(
            np.fromiter((row_of[str(c)] for c in customer_ids), dtype=np.int64, count=len(customer_ids))
        )

    return rows


def truth_from_params(params: pa.Table, expected_reward: Any) -> ExpectedRewardFn:
    """Wrap `expected_reward(params_rows, template_ids, discount_pcts)` keyed by customer_id."""
    rows = _rows_of(params)

    def fn(customer_ids: np.ndarray, template_ids: np.ndarray, discount_pcts: np.ndarray):  # type: ignore[no-untyped-def]
        return expected_reward(params.take(rows(customer_ids)), template_ids, discount_pcts)

    return fn


def organic_from_params(params: pa.Table, organic_reward: Any) -> OrganicRewardFn:
    """Wrap `organic_reward(params_rows)` keyed by customer_id."""
    rows = _rows_of(params)

    def fn(customer_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return organic_reward(params.take(rows(np.asarray(customer_ids, dtype=object))))  # type: ignore[no-any-return]

    return fn


def warehouse_truth(directory: Any = None) -> ExpectedRewardFn:
    """The generator's truth from `warehouse.paths.truth_dir()` (or `directory`)."""
    from warehouse.truth import expected_reward, load_truth

    truth = load_truth(directory)
    return truth_from_params(truth.params, expected_reward)


def warehouse_organic(directory: Any = None) -> OrganicRewardFn:
    """The generator's no-contact response (`warehouse.truth.organic_reward`), keyed by customer_id."""
    from warehouse.truth import load_truth, organic_reward

    truth = load_truth(directory)
    return organic_from_params(truth.params, organic_reward)
