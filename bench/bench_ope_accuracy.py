"""How accurate is the doubly robust estimate, history after history? An accuracy study of the OPE.

The policies decide once, on the demo warehouse as built (rules; uniform random; with --llm the LLM
through the decision cache, so after `make eval` it makes no model calls). Then the campaign
history is drawn again and again from the known logging policy for the same customers (history 0
is the warehouse's own, byte for byte; the others use fresh seeds), and each policy's DR estimate
on each history is set against its true value from the generator. One estimate per history, as
`nba-eval` makes it; the spread over histories is what the 5% check has to live with.

    .venv/bin/python bench/bench_ope_accuracy.py [--histories 20] [--llm]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import date
from functools import partial
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.config import RunConfig, load_settings  # noqa: E402
from core.contracts import Decision, Mode  # noqa: E402
from evals.cli import FEATURES  # noqa: E402
from evals.harness import restrict  # noqa: E402
from evals.ope import (  # noqa: E402
    METRICS,
    DoublyRobust,
    LoggedData,
    Metric,
    TargetPolicy,
    effective_sample_size,
    true_policy_value,
)
from evals.targets import target_from_decisions, uniform_random_target  # noqa: E402
from evals.truth_adapter import truth_from_params  # noqa: E402
from warehouse import paths, truth  # noqa: E402
from warehouse.build import ensure_warehouse  # noqa: E402
from warehouse.generate import GenerateConfig, build_world, read_meta  # noqa: E402


def decided(con: duckdb.DuckDBPyConnection, ids: list[str], mode: Mode) -> list[Decision]:
    """Each customer's decision under `mode` (as nba-eval decides: no holdouts, 90d_clv, cap 5)."""
    from agent.context import data_as_of, load_contexts, reference_for
    from agent.pipeline import decide

    contexts = list(load_contexts(con, customer_ids=ids))
    settings = load_settings(
        RunConfig,
        mode=mode,
        goal="90d_clv",
        discount_cap=5.0,
        prompt_version="v1",
        global_holdout_pct=0,
        segment_holdout_pct=0,
    )
    pairs, stats = decide(
        contexts, {}, settings, run_id=f"ope-accuracy-{mode}", as_of=data_as_of(con), ref=reference_for(con)
    )
    if mode == "llm":
        print(
            f"LLM decisions: {stats['cache_hits']} from the decision cache, {stats['llm_calls']} model calls"
        )
    return [d for d, _ in pairs]


def logged_from(touches: pa.Table, customers: pa.Table, segmented: set[str]) -> LoggedData:
    """The campaign-history mart joined to the customer features, as nba-eval reads it (missing
    features imputed over all rows), restricted to the segmented customers."""
    joined = touches.select(
        ["customer_id", "template_id", "discount_pct", "propensity", "converted_14d", "revenue_90d"]
    ).join(customers, "customer_id", join_type="inner")
    table = joined.set_column(
        joined.column_names.index("template_id"),
        "template_id",
        joined.column("template_id").cast(pa.string()),
    )
    return restrict(LoggedData.from_arrow(table, feature_columns=FEATURES), segmented)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--histories", type=int, default=20)
    ap.add_argument("--llm", action="store_true", help="include the LLM policy (prompt v1, decision cache)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    ensure_warehouse()  # the demo warehouse, built on first use
    meta = read_meta()
    assert meta is not None
    con = duckdb.connect(str(paths.duckdb_path()), read_only=True)
    customers = con.sql(
        "select c.customer_id, s.segment, "
        + ", ".join(f"c.{f}" for f in FEATURES)
        + " from main.mart_marketing__customer_360 c left join main.mart_marketing__segment_scores s"
        " using (customer_id)"
    ).to_arrow_table()
    ids = [
        r[0]
        for r in con.sql(
            "select customer_id from main.mart_marketing__segment_scores where segment is not null"
        ).fetchall()
    ]
    modes: tuple[Mode, ...] = ("rules", "llm") if args.llm else ("rules",)
    policies: dict[str, Callable[[LoggedData], TargetPolicy]] = {
        m: partial(target_from_decisions, decisions=decided(con, ids, m), name=m) for m in modes
    }
    policies["uniform random"] = uniform_random_target
    own_rows = con.sql(
        "select count(*) from main.mart_marketing__campaign_history where segment is not null"
    ).fetchall()[0][0]
    con.close()

    seed = int(str(meta["seed"]))
    world = build_world(
        GenerateConfig(
            seed=seed, customers=int(str(meta["customers"])), as_of=date.fromisoformat(str(meta["as_of"]))
        )
    )
    truth_fn = truth_from_params(world.params, truth.expected_reward)
    errors: dict[tuple[str, Metric], list[float]] = {}
    ess: dict[str, list[float]] = {}
    rows = []
    for h in range(args.histories):
        rng = None if h == 0 else np.random.default_rng([seed, 1000 + h])
        data = logged_from(world.touches(rng), customers, set(ids))
        rows.append(data.n)
        if h == 0 and data.n != own_rows:
            sys.exit(f"error: history 0 has {data.n} rows, the warehouse {own_rows}: rebuild it (make build)")
        for name, make in policies.items():
            target = make(data)
            ess.setdefault(name, []).append(effective_sample_size(data, target))
            for metric in METRICS:
                est = DoublyRobust(metric).estimate_policy_value(data, target)
                true = true_policy_value(data, target, truth_fn, metric=metric)
                errors.setdefault((name, metric), []).append((est - true) / true)

    print(
        f"{args.histories} campaign histories of the {len(ids)} segmented customers "
        f"({min(rows):,}-{max(rows):,} logged touches each; history 0 is the warehouse's own)"
    )
    print(
        f"{'policy':<16}{'metric':<15}{'history 0':>10}{'RMS error':>11}{'mean error':>12}{'> 5% off':>10}{'ESS':>8}"
    )
    for (name, metric), e in errors.items():
        arr = np.array(e)
        print(
            f"{name:<16}{metric:<15}{arr[0]:>+10.1%}{np.sqrt(np.mean(arr**2)):>11.1%}{arr.mean():>+12.1%}"
            f"{np.mean(np.abs(arr) > 0.05):>10.0%}{np.mean(ess[name]):>8,.0f}"
        )
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
