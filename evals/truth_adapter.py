"""Adapt the generator's ground truth (warehouse/truth.py) to the harness's truth interface:
(customer_ids, template_ids, discount_pcts) -> (expected conversion, expected revenue_90d)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from evals.ope import ExpectedRewardFn


def truth_from_params(params: pa.Table, expected_reward: Any) -> ExpectedRewardFn:
    """Wrap `expected_reward(params_rows, template_ids, discount_pcts)` keyed by customer_id."""
    ids = params.column("customer_id").to_pylist()
    row_of = {str(c): i for i, c in enumerate(ids)}

    def fn(customer_ids: np.ndarray, template_ids: np.ndarray, discount_pcts: np.ndarray):  # type: ignore[no-untyped-def]
        missing = [c for c in customer_ids[:1000] if str(c) not in row_of]
        if missing:
            raise KeyError(f"customers without ground truth (e.g. {missing[:3]}): regenerate the warehouse")
        rows = pa.array(
            np.fromiter((row_of[str(c)] for c in customer_ids), dtype=np.int64, count=len(customer_ids))
        )
        return expected_reward(params.take(rows), template_ids, discount_pcts)

    return fn


def warehouse_truth(directory: Any = None) -> ExpectedRewardFn:
    """The generator's truth from `warehouse.paths.truth_dir()` (or `directory`)."""
    from warehouse.truth import expected_reward, load_truth

    truth = load_truth(directory)
    return truth_from_params(truth.params, expected_reward)
