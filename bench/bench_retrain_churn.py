"""How much a retrain moves the learned policy when the log barely changes, side by side with a
retrain under another training seed (what every retrain was while the training's samples were drawn
by position: a log with one more day redrew them all).

    .venv/bin/python bench/bench_retrain_churn.py \
        --world demo=warehouse/dbt/warehouse.duckdb:warehouse/data/truth --seeds 0,1 --drops 3

Per training seed: the safe greedy policy trained on the whole log, then (a) on the log with 1/300
of its rows dropped, `--drops` times (a day's sends are about that share of the demo's log), and (b)
on the whole log with another seed. For each, the share of contactable customers whose action
changes and the change of the policy's true value per contactable customer (the generator's truth).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_learned import World  # noqa: E402

from agent.learned.features import build_customer_features, customer_table  # noqa: E402
from agent.learned.model import LearnerParams, ensemble_size, train  # noqa: E402
from agent.learned.point_in_time import CustomerTimeline  # noqa: E402
from agent.pipeline import Pipeline  # noqa: E402
from agent.policies import RulesPolicy  # noqa: E402
from agent.policies.learned import LearnedPolicy, TrainedModel  # noqa: E402
from core.config import LearnedSettings  # noqa: E402
from core.reference import load_reference  # noqa: E402

DROP_SHARE = 1 / 300
OTHER_SEED = 1000  # added to the training seed for the "another seed" retrain


class Trainer:
    def __init__(self, world: World, goal: str) -> None:
        self.world, self.goal = world, goal
        self.truth = np.nan_to_num(world.truth[goal], nan=0.0)
        cust = customer_table(world.con)
        timeline = CustomerTimeline.load(world.con, cust.column("customer_id").to_pylist())
        self.cf = build_customer_features(cust, world.touches, timeline=timeline)
        self.settings = LearnedSettings()
        self.ref, self.guard = load_reference(), world.settings(goal).guardrails()
        pipe = Pipeline(
            RulesPolicy(self.guard, self.ref),
            guard=self.guard,
            ref=self.ref,
            run_id="bench",
            as_of=world.as_of,
        )
        self.batch = [(c, pipe.eligibility(c, {})) for c in world.contexts]

    def greedy(self, touches: object, seed: int) -> tuple[np.ndarray, float]:
        """The safe greedy action per contactable customer and its true value per customer."""
        learner = self.settings.learner
        members = ensemble_size("auto", len(self.cf), learner)
        params = LearnerParams.for_goal(self.goal, learner, gbm_members=members, seed=seed)  # type: ignore[arg-type]
        model = train(touches, self.cf, goal=self.goal, params=params)  # type: ignore[arg-type]
        policy = LearnedPolicy(
            TrainedModel(model, self.cf, True, 0.0), guard=self.guard, ref=self.ref, settings=self.settings
        )
        m, allowed = policy.member_values(self.batch)
        order = policy.greedy_order(self.batch, m.mean(axis=0), allowed, m)
        a = np.where(allowed, np.nan_to_num(order, nan=-np.inf), -np.inf).argmax(axis=1)
        return a, float(self.truth[np.arange(len(a)), a].mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--world",
        default=f"demo={ROOT}/warehouse/dbt/warehouse.duckdb:{ROOT}/warehouse/data/truth",
        help="label=duckdb_path:truth_dir (default: the demo)",
    )
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--drops", type=int, default=3)
    ap.add_argument("--goal", default="90d_clv")
    args = ap.parse_args()
    label, paths = args.world.split("=", 1)
    db, truth = paths.split(":", 1)
    world = World(label, Path(db), Path(truth))
    trainer = Trainer(world, args.goal)
    n = world.touches.num_rows
    rows: dict[str, list[tuple[float, float]]] = {"a day's change": [], "another seed": []}
    for seed in (int(s) for s in args.seeds.split(",")):
        a0, v0 = trainer.greedy(world.touches, seed)
        for d in range(args.drops):
            keep = np.sort(np.random.default_rng([99, d]).choice(n, n - int(n * DROP_SHARE), replace=False))
            a, v = trainer.greedy(world.touches.take(keep), seed)
            rows["a day's change"].append((float((a != a0).mean()), v - v0))
            print(
                json.dumps(
                    {
                        "seed": seed,
                        "drop": d,
                        "changed": rows["a day's change"][-1][0],
                        "value": v,
                        "diff": v - v0,
                    }
                ),
                flush=True,
            )
        a, v = trainer.greedy(world.touches, seed + OTHER_SEED)
        rows["another seed"].append((float((a != a0).mean()), v - v0))
        print(
            json.dumps(
                {
                    "seed": seed,
                    "other_seed": seed + OTHER_SEED,
                    "changed": rows["another seed"][-1][0],
                    "value": v,
                    "diff": v - v0,
                }
            ),
            flush=True,
        )
    print(f"\n{label}, goal {args.goal}, {len(world.contexts)} contactable customers, {n:,} logged touches")
    print(
        "| retrain | customers whose action changes, mean (range) | true value change per customer, RMS (range) |"
    )
    print("| --- | --- | --- |")
    for name, r in rows.items():
        ch, dv = np.array([x[0] for x in r]), np.array([x[1] for x in r])
        print(
            f"| {name} ({len(r)}) | {ch.mean():.1%} ({ch.min():.1%}-{ch.max():.1%}) | "
            f"{np.sqrt((dv**2).mean()):.3f} ({dv.min():+.3f} to {dv.max():+.3f}) |"
        )
    day, other = (np.array([x[0] for x in rows[k]]).mean() for k in rows)
    print(f"\nchurn of a day's change / churn of another seed: {day / other:.2f}x")


if __name__ == "__main__":
    main()
