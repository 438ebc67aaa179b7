"""The learned POLICY (safe switching and exploration included) on the generator's truth, side by
side with the model's plain argmax, the rules, uniform random and the oracle, over several
retrainings (training seeds) per world and goal, for each learner asked for (`--learners gbm,dr`:
the GBM reward model's argmax beside the DR-learner's, same seeds, same worlds, same policy on top).

    .venv/bin/python bench/bench_learned_policy.py --world demo=warehouse/dbt/warehouse.duckdb:warehouse/data/truth \
        --world s7=/tmp/w/s7/warehouse.duckdb:/tmp/w/s7/truth --seeds 0,1,2,3,4 --goals 90d_clv,engagement \
        --learners gbm,dr

Per world, goal and training seed, the true value per contactable customer of:
- argmax: the model's best-valued allowed action (the GBM argmax of before);
- safe greedy: the policy's choice without exploring (the rules' action unless the members are sure);
- as sent: the policy's whole distribution (exploration included), in expectation;
and the share of the oracle, the share of the rules->oracle gap closed, and the exploration cost
(safe greedy - as sent) as a share of that gap. Printed with the spread over the seeds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_learned import World  # noqa: E402

from agent.learned import default_catalog  # noqa: E402
from agent.learned.features import build_customer_features, customer_table  # noqa: E402
from agent.learned.model import LearnerParams, ensemble_size, train  # noqa: E402
from agent.learned.point_in_time import CustomerTimeline  # noqa: E402
from agent.pipeline import Pipeline  # noqa: E402
from agent.policies import RulesPolicy  # noqa: E402
from agent.policies.learned import LearnedPolicy, TrainedModel  # noqa: E402
from core.config import LearnedSettings  # noqa: E402
from core.reference import load_reference  # noqa: E402

LEVELS = (0.6, 0.75, 0.95)  # switch confidence levels measured beside the setting's own


def policy_values(
    world: World,
    goal: str,
    seed: int,
    settings: LearnedSettings,
    learner: str = "gbm",
    overrides: dict[str, Any] | None = None,
) -> dict[str, float]:
    truth = np.nan_to_num(world.truth[goal], nan=0.0)
    cust = customer_table(world.con)
    # the product's training rows: the 360 block as of each touch, from the dated facts
    timeline = CustomerTimeline.load(world.con, cust.column("customer_id").to_pylist())
    cf = build_customer_features(cust, world.touches, timeline=timeline)
    members = ensemble_size("auto", len(cf), learner)  # type: ignore[arg-type]
    params = LearnerParams.for_goal(goal, learner, gbm_members=members, seed=seed, **(overrides or {}))  # type: ignore[arg-type]
    t0 = time.perf_counter()
    model = train(world.touches, cf, goal=goal, params=params)  # type: ignore[arg-type]
    seconds = time.perf_counter() - t0
    config = world.settings(goal)
    ref, guard = load_reference(), config.guardrails()
    policy = LearnedPolicy(TrainedModel(model, cf, True, seconds), guard=guard, ref=ref, settings=settings)
    pipe = Pipeline(RulesPolicy(guard, ref), guard=guard, ref=ref, run_id="bench", as_of=world.as_of)
    batch = [(c, pipe.eligibility(c, {})) for c in world.contexts]
    members, allowed = policy.member_values(batch)
    values = members.mean(axis=0)
    argmax = np.where(allowed, np.nan_to_num(values, nan=-np.inf), -np.inf).argmax(axis=1)
    outcomes = asyncio.run(policy.propose(batch))
    cat = default_catalog()
    pmf = np.zeros_like(truth)
    for i, o in enumerate(outcomes):
        for a in o.pmf:
            pmf[
                i,
                cat.indices(np.array([a.template_id], dtype=object), np.array([a.discount_pct]), snap=True)[
                    0
                ],
            ] += a.probability
        if not o.pmf and o.proposal is not None:
            j = cat.indices(
                np.array([o.proposal.template_id], dtype=object),
                np.array([o.proposal.discount_pct]),
                snap=True,
            )[0]
            pmf[i, j] = 1.0
    order = policy.greedy_order(batch, values, allowed, members)
    safe = np.where(allowed, np.nan_to_num(order, nan=-np.inf), -np.inf).argmax(axis=1)
    rows = np.arange(len(truth))
    levels: dict[str, float] = {}
    segments = np.array([c.segment for c in world.contexts], dtype=object)
    for level in sorted({*LEVELS, settings.switch_confidence}):
        # the safe switch at other confidence levels, on the same trained model, overall and per
        # segment (the per-segment rows bound what a level chosen per segment could gain)
        other = LearnedPolicy(
            policy.trained,
            guard=guard,
            ref=ref,
            settings=settings.model_copy(
                update={"switch_confidence": level, "segment_switch_confidence": {}}
            ),
        )
        o = other.greedy_order(batch, values, allowed, members)
        chosen = truth[rows, np.where(allowed, np.nan_to_num(o, nan=-np.inf), -np.inf).argmax(axis=1)]
        levels[f"safe@{level}"] = float(chosen.mean())
        for seg in np.unique(segments):
            levels[f"segment:{seg}@{level}"] = float(chosen[segments == seg].sum() / len(chosen))
    rules = world.value(goal, world.rules_actions(goal))
    oracle = float(np.nanmax(world.truth[goal], axis=1).mean())
    # calibration: the model's value of the sent actions against their truth
    shown = float(np.nansum(np.nan_to_num(values) * pmf, axis=1).mean())
    out = {
        "oracle": oracle,
        "rules": rules,
        "random": float(np.nanmean(world.truth[goal], axis=1).mean()),
        "argmax": float(truth[rows, argmax].mean()),
        "safe_greedy": float(truth[rows, safe].mean()),
        "as_sent": float((truth * pmf).sum(axis=1).mean()),
        "switched_share": float((safe != world.rules_actions(goal)).mean()),
        "model_value_of_sent": shown,
        "train_s": seconds,
        **levels,
    }
    return out


def print_per_segment(runs: list[dict[str, float]], gap: float) -> None:
    """Per segment, the level whose mean over the seeds is best on the truth, and what choosing the
    level per segment that way (with hindsight: an upper bound) adds over the setting's one level,
    per contactable customer, as a share of the gap, with the spread over the seeds."""
    keys = [k for k in runs[0] if k.startswith("segment:")]
    segs = sorted({k.split(":", 1)[1].rsplit("@", 1)[0] for k in keys})
    one = f"@{LearnedSettings().switch_confidence}"
    gains = np.zeros(len(runs))
    for seg in segs:
        at = {k.rsplit("@", 1)[1]: k for k in keys if k.split(":", 1)[1].rsplit("@", 1)[0] == seg}
        best = max(at, key=lambda lv: np.mean([r[at[lv]] for r in runs]))
        gains += np.array([r[at[best]] - r[f"segment:{seg}{one}"] for r in runs])
        print(f"   segment {seg}: best level {best} (the setting: {one[1:]})")
    print(
        f"   a level per segment, chosen with hindsight: +{gains.mean():.4f} per customer "
        f"({gains.mean() / gap:.1%} of the gap; seeds {gains.min() / gap:.1%} to {gains.max() / gap:.1%})"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--world", action="append", required=True, help="LABEL=DUCKDB:TRUTH_DIR")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--goals", default="90d_clv,engagement")
    ap.add_argument("--learners", default="gbm", help="comma-separated: gbm, dr, vw")
    ap.add_argument(
        "--param", action="append", default=[], help="LearnerParams field=value (e.g. dr_min_leaf=2000)"
    )
    ap.add_argument("--json", default=None, help="write the rows here")
    a = ap.parse_args()
    settings = LearnedSettings()
    kinds = {f.name: type(getattr(LearnerParams(), f.name)) for f in fields(LearnerParams)}
    overrides = {k: kinds[k](v) for k, v in (p.split("=", 1) for p in a.param)}
    results = []
    for spec in a.world:
        label, rest = spec.split("=", 1)
        db, truth_dir = rest.split(":", 1)
        world = World(label, Path(db), Path(truth_dir))
        print(
            f"\n== {label}: {len(world.ids)} contactable customers, {world.touches.num_rows:,} logged touches"
        )
        for goal, learner in [(g, x) for g in a.goals.split(",") for x in a.learners.split(",")]:
            runs = []
            for s in a.seeds.split(","):
                runs.append(policy_values(world, goal, int(s), settings, learner, overrides))
                r = runs[-1]
                print(
                    f"   seed {s}: argmax {r['argmax']:.4f}  safe {r['safe_greedy']:.4f}  "
                    f"as sent {r['as_sent']:.4f}  train {r['train_s']:.0f}s",
                    flush=True,
                )
            r0 = runs[0]
            gap = r0["oracle"] - r0["rules"]
            print(
                f"-- {goal}, learner {learner}: oracle {r0['oracle']:.4f}  rules {r0['rules']:.4f} ({r0['rules'] / r0['oracle']:.1%})  random {r0['random']:.4f}"
            )
            for key in ("argmax", *(f"safe@{x}" for x in LEVELS), "safe_greedy", "as_sent"):
                v = np.array([r[key] for r in runs])
                closed = (v - r0["rules"]) / gap
                print(
                    f"   {key:<12} {v.mean():.4f} (seeds {v.min():.4f}-{v.max():.4f})  "
                    f"{v.mean() / r0['oracle']:.1%} of the oracle  gap closed {closed.mean():.0%} "
                    f"({closed.min():.0%}-{closed.max():.0%})"
                )
            cost = np.array([(r["safe_greedy"] - r["as_sent"]) / gap for r in runs])
            sw = np.array([r["switched_share"] for r in runs])
            cal = np.array([r["model_value_of_sent"] / r["as_sent"] for r in runs])
            print(
                f"   exploration cost {cost.mean():.1%} of the gap ({cost.min():.1%}-{cost.max():.1%}); switched "
                f"from rules on {sw.mean():.0%}; model value / true value of what is sent {cal.mean():.3f}; "
                f"train {np.mean([r['train_s'] for r in runs]):.0f}s"
            )
            print_per_segment(runs, gap)
            results += [
                {"world": label, "goal": goal, "learner": learner, "params": a.param, "seed": s, **r}
                for s, r in zip(a.seeds.split(","), runs, strict=True)
            ]
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
