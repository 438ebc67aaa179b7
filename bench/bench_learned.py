"""The learned value model measured on the generator's truth, side by side with the oracle, rules and
uniform random, on the demo warehouse and on other generated ones; plus a time-split off-policy check
and the 1M-customer scale figures.

    .venv/bin/python bench/bench_learned.py                               # demo + seed 7 x 20,000
    .venv/bin/python bench/bench_learned.py --world demo=warehouse/dbt/warehouse.duckdb:warehouse/data/truth \
        --world s7=/tmp/lx/s7/warehouse.duckdb:/tmp/lx/s7/truth --scale /tmp/lx/m1/warehouse.duckdb

A world is LABEL=DUCKDB:TRUTH_DIR; a missing seed-7 world is generated and built under --root first.
Per world and goal: the true value per contactable customer (one decision each: the true expected
reward of its action) of the oracle (best allowed action, from the truth), learned VW, learned GBM,
rules (agent.pipeline.decide, mode rules) and uniform random within the allowed actions. Allowed:
the segment's bank, on the channels eligibility allows (consent, frequency caps; no holdout), on the
grid, discount <= 5. Targets (issue 13): learned >= 1.10x rules and >= 93% of the oracle.
Time split: train on touches before as_of - 90 days, DR estimate (evals.ope.DoublyRobust) of the
learned policy on the touches after it vs its true value on those rows (within 5%, 95% interval
covering). Scale: training on the 1M warehouse within 180 s and 8 GB peak RSS (a child process),
scoring 1M customers x their allowed actions within 60 s. The machine is shared: timings are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.context import data_as_of, load_contexts  # noqa: E402
from agent.learned import explore  # noqa: E402
from agent.learned.actions import allowed_mask, default_catalog  # noqa: E402
from agent.learned.data import logged_touches  # noqa: E402
from agent.learned.features import build_customer_features, customer_table  # noqa: E402
from agent.learned.model import LearnedModel, LearnerParams, ensemble_size, train  # noqa: E402
from agent.pipeline import Pipeline, decide  # noqa: E402
from agent.policies import RulesPolicy  # noqa: E402
from core.config import LearnedSettings, RunConfig, settings_from  # noqa: E402
from core.reference import load_reference  # noqa: E402
from warehouse.truth import expected_reward, load_truth  # noqa: E402

GOALS = ("90d_clv", "engagement")
CAP = 5.0
SPLIT_DAYS = 90
OPE_FEATURES = ("lifetime_revenue", "recency_days", "sessions_30d", "latest_nps_score", "tenure_days")


class World:
    """A built warehouse, its contactable customers and their allowed actions, and the truth."""

    def __init__(self, label: str, duckdb_path: Path, truth_dir: Path) -> None:
        self.label, self.truth_dir = label, truth_dir
        self.con = duckdb.connect(str(duckdb_path), read_only=True)
        self.as_of = data_as_of(self.con)
        contexts = load_contexts(self.con)
        config = self.settings("90d_clv")
        ref, guard = load_reference(), config.guardrails()
        pipe = Pipeline(RulesPolicy(guard, ref), guard=guard, ref=ref, run_id="bench", as_of=self.as_of)
        elig = [pipe.eligibility(c, {}) for c in contexts]
        self.contexts = [c for c, e in zip(contexts, elig, strict=True) if e.needs_proposal]
        chans = [e.allowed_channels for e in elig if e.needs_proposal]
        self.ids = np.array([c.customer_id for c in self.contexts], dtype=object)
        self.allowed = allowed_mask([c.segment for c in self.contexts], chans, CAP)
        self.segmented = len(contexts)
        params = load_truth(truth_dir).params
        index = {c: i for i, c in enumerate(params.column("customer_id").to_pylist())}
        self.params = params.take(pa.array([index[c] for c in self.ids]))
        cat = default_catalog()
        r, a = np.nonzero(self.allowed)
        conv, rev = expected_reward(self.params.take(pa.array(r)), cat.template_ids[a], cat.discounts[a])
        self.truth = {}
        for goal, v in (("90d_clv", rev), ("engagement", conv)):
            t = np.full(self.allowed.shape, np.nan)
            t[r, a] = v
            self.truth[goal] = t
        self.touches = logged_touches(self.con, segmented_only=True)

    def settings(self, goal: str) -> RunConfig:
        return settings_from(
            RunConfig, mode="rules", goal=goal, discount_cap=CAP, global_holdout_pct=0, segment_holdout_pct=0
        )

    def value(self, goal: str, actions: np.ndarray) -> float:
        return float(self.truth[goal][np.arange(len(actions)), actions].mean())

    def rules_actions(self, goal: str) -> np.ndarray:
        decided, _ = decide(self.contexts, {}, self.settings(goal), run_id=f"bench-{goal}", as_of=self.as_of)
        cat = default_catalog()
        acts = cat.indices(
            np.array([d.template_id for d, _ in decided], dtype=object),
            np.array([d.discount_pct for d, _ in decided]),
            snap=True,
        )
        if (acts < 0).any() or not self.allowed[np.arange(len(acts)), acts].all():
            raise SystemExit(
                "rules chose an action outside the allowed set: the bench's allowed set is wrong"
            )
        return acts


def learned_choice(model: LearnedModel, cf, world: World) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    values = model.score(cf, world.allowed, rows=cf.rows_of(world.ids))
    choice = explore.choose(values, world.allowed, world.ids, seed=0)
    return choice.greedy, choice.pmf


def run_world(world: World, learners: tuple[str, ...]) -> list[dict]:
    customers = customer_table(world.con)
    cf = build_customer_features(customers, world.touches)
    print(
        f"\n== {world.label}: {world.segmented} segmented customers, {len(world.ids)} contactable, "
        f"{world.touches.num_rows:,} logged touches, as_of {world.as_of:%Y-%m-%d}"
    )
    results = []
    for goal in GOALS:
        truth = world.truth[goal]
        oracle = float(np.nanmax(truth, axis=1).mean())
        rules = world.value(goal, world.rules_actions(goal))
        rnd = float(np.nanmean(truth, axis=1).mean())
        rows = [("oracle", oracle, None), ("rules", rules, None), ("uniform random", rnd, None)]
        for learner in learners:
            t0 = time.perf_counter()
            model = train(world.touches, cf, goal=goal, params=product_params(goal, learner, world.segmented))  # type: ignore[arg-type]
            t_train = time.perf_counter() - t0
            greedy, pmf = learned_choice(model, cf, world)
            explored = float(np.nansum(np.nan_to_num(truth) * pmf, axis=1).mean())
            rows.append((f"learned {learner}", world.value(goal, greedy), (t_train, explored, model.version)))
        unit = "revenue_90d" if goal == "90d_clv" else "conversion"
        print(f"-- goal {goal}: true {unit} per contactable customer")
        print(
            f"   {'policy':<16}{'value':>9}{'/ oracle':>10}{'/ rules':>9}   targets: >= 93% oracle, >= 1.10x rules"
        )
        for name, v, extra in rows:
            line = f"   {name:<16}{v:>9.4f}{v / oracle:>9.1%}{v / rules:>9.3f}x"
            if extra:
                ok = "yes" if v / oracle >= 0.93 and v / rules >= 1.10 else "NO"
                line += (
                    f"   oracle {'ok' if v / oracle >= 0.93 else 'MISS'}, rules {'ok' if v / rules >= 1.10 else 'MISS'}"
                    f" -> {ok}; with 5% exploration {extra[1]:.4f} ({extra[1] / oracle:.1%}); "
                    f"trained in {extra[0]:.1f}s, version {extra[2]}"
                )
            print(line)
            results.append(
                {
                    "world": world.label,
                    "goal": goal,
                    "policy": name,
                    "value": v,
                    "share_of_oracle": v / oracle,
                    "ratio_to_rules": v / rules,
                }
            )
        if oracle / rules < 1.10:
            print(
                f"   note: the oracle itself is {oracle / rules:.3f}x rules here, so >= 1.10x rules is out of reach"
            )
    return results


def time_split(world: World, learner: str) -> list[dict]:
    """Train before as_of - SPLIT_DAYS; DR-estimate the learned policy on the touches after it."""
    from evals.harness import restrict
    from evals.ope import DoublyRobust, LoggedData, TargetPolicy, effective_sample_size, true_policy_value
    from evals.truth_adapter import truth_from_params

    cutoff = world.as_of - timedelta(days=SPLIT_DAYS)
    customers = customer_table(world.con)
    cf = build_customer_features(customers, world.touches, cutoff=cutoff)
    cols = ", ".join(f"c.{f}" for f in OPE_FEATURES)
    after = world.con.execute(
        f"select h.*, {cols} from main.mart_marketing__campaign_history h "
        "join main.mart_marketing__customer_360 c using (customer_id) where h.touched_at >= ?",
        [cutoff.replace(tzinfo=None)],
    ).to_arrow_table()
    data = restrict(LoggedData.from_arrow(after, feature_columns=OPE_FEATURES), set(world.ids.tolist()))
    truth_fn = truth_from_params(load_truth(world.truth_dir).params, expected_reward)
    out = []
    print(
        f"-- time split ({world.label}, {learner}): train on touches before {cutoff:%Y-%m-%d}, "
        f"evaluate on the {data.n:,} touches after it of the {len(world.ids)} contactable customers"
    )
    for goal, metric in (("90d_clv", "revenue_90d"), ("engagement", "converted_14d")):
        model = train(world.touches, cf, goal=goal, params=product_params(goal, learner, world.segmented))  # type: ignore[arg-type]
        greedy, _ = learned_choice(model, cf, world)
        by_customer = dict(zip(world.ids.tolist(), greedy.tolist(), strict=True))
        target = TargetPolicy.deterministic(
            np.array([by_customer[c] for c in data.customer_ids], dtype=np.int64)
        )
        est = DoublyRobust(metric).estimate(data, target, n_bootstrap=1000, seed=11)  # type: ignore[arg-type]
        true = true_policy_value(data, target, truth_fn, metric=metric)  # type: ignore[arg-type]
        err = (est.value - true) / true
        ok = abs(err) <= 0.05 and est.low <= true <= est.high
        print(
            f"   {goal:<11} DR {est.value:.4f} [{est.low:.4f}, {est.high:.4f}]  true {true:.4f}  "
            f"error {err:+.1%}  -> {'within 5% and covered' if ok else 'MISS'}; "
            f"ESS {effective_sample_size(data, target):,.0f} of {data.n:,} rows"
        )
        out.append(
            {
                "world": world.label,
                "goal": goal,
                "dr": est.value,
                "low": est.low,
                "high": est.high,
                "true": true,
                "error": err,
                "ok": ok,
            }
        )
    return out


def product_params(goal: str, learner: str, segmented: int) -> LearnerParams:
    """The parameters the product's learned policy trains with by default (agent.policies.learned
    .model_for): NBA_LEARNED__GBM_MEMBERS=auto averages five boosters up to 20,000 segmented customers."""
    members = ensemble_size(LearnedSettings().gbm_members, segmented, learner)  # type: ignore[arg-type]
    return LearnerParams.for_goal(goal, learner, gbm_members=members)  # type: ignore[arg-type]


def scale_child(duckdb_path: str, learner: str, goal: str, out: str) -> None:
    """In a child process (for its own peak RSS): load, featurise and train on the big warehouse."""
    t0 = time.perf_counter()
    con = duckdb.connect(duckdb_path, read_only=True)
    customers = customer_table(con)
    ids = customers.column("customer_id").to_pylist()
    touches = logged_touches(con, segmented_only=True)
    t1 = time.perf_counter()
    cf = build_customer_features(customers, touches)
    t2 = time.perf_counter()
    model = train(touches, cf, goal=goal, params=product_params(goal, learner, len(ids)))  # type: ignore[arg-type]
    t3 = time.perf_counter()
    model.save(Path(out) / "model")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rss = usage.ru_maxrss / 1024**2
    cpu = usage.ru_utime + usage.ru_stime
    Path(out, "stats.json").write_text(
        json.dumps(
            {
                "load_s": t1 - t0,
                "features_s": t2 - t1,
                "train_s": t3 - t2,
                "total_s": t3 - t0,
                "peak_gb": rss,
                "cpu_s": cpu,
                "touches": touches.num_rows,
                "customers": len(ids),
                "n_train": model.n_train,
                "version": model.version,
            }
        )
    )


def scale(duckdb_path: Path, learners: tuple[str, ...], root: Path) -> None:
    print(f"\n== scale: {duckdb_path}")
    for learner in learners:
        out = root / f"scale-{learner}"
        out.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--scale-child", str(duckdb_path), learner, "90d_clv", str(out)],
            check=True,
        )
        wall = time.perf_counter() - t0
        s = json.loads((out / "stats.json").read_text())
        print(
            f"-- train {learner} (goal 90d_clv) on {s['customers']:,} segmented customers, {s['touches']:,} "
            f"touches ({s['n_train']:,} sampled): load {s['load_s']:.1f}s, features {s['features_s']:.1f}s, "
            f"train {s['train_s']:.1f}s; child wall {wall:.1f}s ({wall / 180:.2f}x the 180 s target), "
            f"peak RSS {s['peak_gb']:.2f} GB ({s['peak_gb'] / 8:.2f}x the 8 GB target); CPU {s['cpu_s']:.0f} s "
            f"(/2 cores = {s['cpu_s'] / 2:.0f} s, roughly the wall time on an idle 2-core machine); "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        # scoring: the segmented customers, tiled to 1,000,000 rows, x their allowed actions
        con = duckdb.connect(str(duckdb_path), read_only=True)
        customers = customer_table(con)
        t1 = time.perf_counter()
        touches = logged_touches(con, segmented_only=True)
        cf = build_customer_features(customers, touches)
        t_feat = time.perf_counter() - t1
        model = LearnedModel.load(out / "model")
        consent = np.column_stack(
            [
                customers.column(f"consent_{c}").to_numpy(zero_copy_only=False)
                for c in ("email", "sms", "push")
            ]
        ).astype(bool)
        rows = np.resize(np.arange(len(cf)), 1_000_000)
        allowed = allowed_mask(cf.segments[rows], consent[rows], CAP)
        t2, c2 = time.perf_counter(), time.process_time()
        values = model.score(cf, allowed, rows=rows)
        choice = explore.choose(values, allowed, cf.customer_ids[rows], seed=0)
        t_score, c_score = time.perf_counter() - t2, time.process_time() - c2
        print(
            f"-- score {learner}: 1,000,000 customer rows x {int(allowed.sum()):,} allowed actions + choose: "
            f"{t_score:.1f}s ({t_score / 60:.2f}x the 60 s target; CPU {c_score:.0f} s); history features of {len(cf):,} customers "
            f"{t_feat:.1f}s; explored share {(choice.actions != choice.greedy).mean():.3f}"
        )


def ensure_world(root: Path, seed: int, customers: int) -> tuple[Path, Path]:
    base = root / f"seed{seed}-{customers}"
    db, truth = base / "warehouse.duckdb", base / "truth"
    if db.exists() and (truth / "customer_params.parquet").exists():
        return db, truth
    from testing.demo_warehouse import build_demo_warehouse

    print(f"[bench] generating and building seed {seed} x {customers:,} under {base} ...", file=sys.stderr)
    build_demo_warehouse(base, customers=customers, seed=seed)
    return db, truth


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--scale-child":
        scale_child(*sys.argv[2:6])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--world", action="append", default=[], help="LABEL=DUCKDB:TRUTH_DIR (repeatable)")
    ap.add_argument("--root", type=Path, default=Path("/tmp/nba-bench-learned"))
    ap.add_argument("--learners", default="vw,gbm")
    ap.add_argument(
        "--scale", type=Path, help="a built 1M-customer warehouse (DuckDB file) for the scale figures"
    )
    ap.add_argument("--no-split", action="store_true")
    ap.add_argument("--scale-only", action="store_true", help="only the scale figures (needs --scale)")
    args = ap.parse_args()
    learners = tuple(args.learners.split(","))
    worlds = []
    for spec in args.world or []:
        label, paths = spec.split("=", 1)
        db, truth = paths.split(":", 1)
        worlds.append((label, Path(db), Path(truth)))
    if not args.world and not args.scale_only:
        worlds.append(
            (
                "demo (seed 42, 5,000)",
                ROOT / "warehouse" / "dbt" / "warehouse.duckdb",
                ROOT / "warehouse" / "data" / "truth",
            )
        )
        db, truth = ensure_world(args.root, 7, 20_000)
        worlds.append(("seed 7, 20,000", db, truth))
    for label, db, truth in worlds:
        w = World(label, db, truth)
        run_world(w, learners)
        if not args.no_split:
            for learner in learners:
                time_split(w, learner)
    if args.scale:
        scale(args.scale, learners, args.root)


if __name__ == "__main__":
    main()
