"""How much power the offline screen has: the eval's paired DR difference (candidate - baseline, per
contactable customer) with the bucket reward model of before and the cross-fitted LightGBM one, and
what shrinking the importance weights (DR with optimistic shrinkage, lambda) would buy, each against
the generator's truth on the same customers. Then what the live ramp needs: decisions until a
sequential test can tell the measured true gain from the non-inferiority margin.

    .venv/bin/python bench/bench_gate_power.py [--mode learned --baseline rules]

Runs `make eval`'s own code path on the warehouse NBA_DUCKDB_PATH points at (default: the demo).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import evals.harness as harness  # noqa: E402
from agent.ramp import half_width  # noqa: E402
from evals.ope import DoublyRobust, importance_weights, per_customer, true_row_values  # noqa: E402
from evals.reward_model import BucketRewardModel, GBMRewardModel  # noqa: E402
from evals.truth_adapter import warehouse_truth  # noqa: E402

CAPTURED: dict = {}


def capture(data, cand, base, truth, n_bootstrap, seed):  # type: ignore[no-untyped-def]
    CAPTURED.update(data=data, cand=cand, base=base)
    return ORIGINAL(data, cand, base, truth, n_bootstrap, seed)


ORIGINAL = harness._comparisons


def paired(data, cand, base, model, lam: float | None) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(estimate, 95% half-width) of the paired DR difference per customer, weights shrunk by lam."""
    dr = DoublyRobust("revenue_90d", model)
    m = dr.fit(data)
    wc, wb = importance_weights(data, cand), importance_weights(data, base)
    if lam is not None:
        wc, wb = lam * wc / (wc**2 + lam), lam * wb / (wb**2 + lam)
    q = m.table[m.cells, data.actions]
    terms = (
        cand.expected(m.table, m.cells) - base.expected(m.table, m.cells) + (wc - wb) * (data.revenue_90d - q)
    )
    per = per_customer(data, terms[:, None])[:, 0]
    return float(per.mean()), 1.96 * float(per.std(ddof=1)) / math.sqrt(len(per))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", default="learned")
    ap.add_argument("--baseline", default="rules")
    a = ap.parse_args()
    harness._comparisons = capture
    from evals.cli import main as eval_main

    eval_main(["--mode", a.mode, "--baseline", a.baseline, "--output", "json", "--n-bootstrap", "200"])
    data, (cn, cand), (bn, base) = CAPTURED["data"], CAPTURED["cand"], CAPTURED["base"]
    truth = warehouse_truth()
    diff = true_row_values(data, cand, truth) - true_row_values(data, base, truth)
    true = float(per_customer(data, diff[:, None])[:, 0].mean())
    customers = len(set(data.customer_ids.astype(str)))
    print(
        f"\n{cn} - {bn}: {data.n:,} logged rows of {customers} contactable customers; true difference {true:+.3f}"
    )
    print(f"{'reward model':<10}{'lambda':>8}{'estimate':>10}{'95% half-width':>16}{'covers':>8}")
    for model in (BucketRewardModel(), GBMRewardModel()):
        for lam in (None, 300.0, 100.0, 30.0, 10.0):
            est, half = paired(data, cand, base, model, lam)
            name = "bucket" if isinstance(model, BucketRewardModel) else "lightgbm"
            covers = "yes" if abs(est - true) <= half else "NO"
            print(f"{name:<10}{'-' if lam is None else int(lam):>8}{est:>+10.3f}{half:>16.3f}{covers:>8}")
    # the live ramp: per decision, the paired term's spread on this world, and how many decisions a
    # confidence sequence needs to put the true gain's lower bound above minus 1% of the baseline
    base_value = float(per_customer(data, true_row_values(data, base, truth)[:, None])[:, 0].mean())
    r = data.revenue_90d
    acts = [t.actions if t.actions is not None else np.asarray(t.probs).argmax(axis=1) for t in (cand, base)]
    differ = float((acts[0] != acts[1]).mean())
    sd = (
        math.sqrt(differ) * 2 * math.sqrt(float(np.mean(r**2)))
    )  # share 0.5: the term is +/- 2 r where they differ
    room = true + 0.01 * base_value
    if room > 0:  # the smallest t whose half-width (agent.ramp's own sequence) is below the room
        t = 2
        while half_width(t, sd * sd, 0.05) >= room:
            t *= 2
        lo, hi = t // 2, t
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if half_width(mid, sd * sd, 0.05) >= room else (lo, mid)
        print(
            f"\nramp: rows the policies disagree on {differ:.0%}; per-decision spread of the paired term ~{sd:.1f}; "
            f"promotion (lower bound > -1% of {base_value:.2f}) needs ~{hi:,} ramp decisions with outcomes"
        )


if __name__ == "__main__":
    main()
