"""Decisions per second: one process vs Spark's workers, rules mode, on a 1M-customer warehouse.

    make seed CUSTOMERS=1000000 && make build     (with NBA_RAW_DIR, NBA_TRUTH_DIR, NBA_DUCKDB_PATH,
                                                   DBT_TARGET_PATH under /tmp; see bench_activate.py)
    .venv-spark/bin/python bench/bench_spark_decisions.py --duckdb /tmp/nba-1m/warehouse.duckdb

Both sides start from the same two marts (customer 360 and segment scores) and end with the
decision log written as a table:
- one process: agent.context reads the marts as Arrow -> contexts -> the Pipeline -> decision-log
  rows -> an atomic insert into a scratch DuckDB table (what `activate` does);
- Spark (`--master`, default local[2]): the marts are copied once to Parquet tables in a scratch
  metastore under --work (building them with dbt-spark at 1M is `make build-spark`, not measured
  here), then agent.spark.decisions: the same context SQL, mapInArrow over partitions ->
  the same Pipeline -> the decision log written as a Parquet table (without the Decision/report JSON
  that `activate` brings back to the driver for delivery: the one-process side makes none either).
It then checks that the two produced the same decisions (ids, statuses, actions, context hashes).
Run both sides in one run: the machine is shared, so the ratio means more than either figure.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MARTS = ("mart_marketing__customer_360", "mart_marketing__segment_scores")
KEY = ["decision_id", "customer_id", "status", "channel", "template_id", "discount_pct", "context_hash"]


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def rules_pipeline(duckdb_path: Path, as_of: datetime) -> Any:
    """The run's Pipeline as activate builds it (rules, this warehouse's reference data)."""
    import duckdb

    from agent.context import reference_for
    from agent.pipeline import Pipeline
    from core.config import RunConfig, settings_from

    config = settings_from(RunConfig, mode="rules", segment="all")
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        ref = reference_for(con)
    return Pipeline.from_config(config, run_id="bench", as_of=as_of, ref=ref)


def single_process(duckdb_path: Path, as_of: datetime, work: Path) -> tuple[float, Any, Any]:
    import duckdb

    from agent.context import load_contact_history, load_contexts, reference_for
    from agent.pipeline import Pipeline
    from core.config import RunConfig, settings_from
    from warehouse.decision_log import decision_rows
    from warehouse.ops_tables import ensure_ops_tables, insert_atomically

    config = settings_from(RunConfig, mode="rules", segment="all")
    t0, c0 = time.perf_counter(), _cpu()
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        contexts = load_contexts(con)
        history = load_contact_history(con)
        ref = reference_for(con)
    t_read = time.perf_counter() - t0
    pipe = Pipeline.from_config(config, run_id="bench", as_of=as_of, ref=ref)
    t1 = time.perf_counter()
    decided = pipe.decide(contexts, history)
    t_decide = time.perf_counter() - t1
    rows = decision_rows(decided, dry_run=True)
    scratch = work / "single.duckdb"
    scratch.unlink(missing_ok=True)
    with duckdb.connect(str(scratch)) as out:
        ensure_ops_tables(out)
        insert_atomically(out, "ops.decision_log", rows)
    total = time.perf_counter() - t0
    cpu = _cpu() - c0
    print(
        f"one process : read {t_read:6.1f}s + decide {t_decide:6.1f}s + log {total - t_read - t_decide:5.1f}s"
        f" = {total:6.1f}s   {len(decided) / total:8,.0f} decisions/s end to end"
        f"   ({len(decided) / t_decide:,.0f}/s deciding alone; {cpu:.0f} CPU s: {len(decided) / cpu:,.0f} per CPU s)"
    )
    return total, pipe, rows.select(KEY).sort_by("customer_id")


def copy_marts(duckdb_path: Path, parquet_dir: Path) -> None:
    import duckdb

    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        for mart in MARTS:
            target = parquet_dir / mart / "part-0.parquet"  # a table's location is a folder
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                con.execute(f"copy main.{mart} to '{target}' (format parquet)")


def on_spark(duckdb_path: Path, pipe: Any, work: Path, master: str, partitions: int) -> tuple[float, Any]:
    """The run's Pipeline (built by the single-process side) broadcast to Spark's workers."""
    import duckdb

    from agent.context import load_contact_history
    from agent.spark.decisions import decisions_frame, log_columns
    from agent.spark.source import spark_session

    copy_marts(duckdb_path, work / "marts")
    os.environ["NBA_SPARK_DIR"] = str(work / "spark")
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        history = load_contact_history(con)
    with spark_session("nba-bench", **{"spark.master": master}) as spark:
        spark.sql("create database if not exists bench")
        for mart in MARTS:
            spark.sql(f"drop table if exists bench.{mart}")
            spark.sql(f"create table bench.{mart} using parquet location '{work / 'marts' / mart}'")
        spark.sql("drop table if exists bench.decision_log")
        t0 = time.perf_counter()
        frame = decisions_frame(spark, pipe, history, schema="bench", partitions=partitions, payloads=False)
        frame.select(*log_columns()).write.format("parquet").saveAsTable("bench.decision_log")
        total = time.perf_counter() - t0
        written = spark.table("bench.decision_log")
        n = written.count()
        got = written.select(*KEY).toArrow().sort_by("customer_id")
        workers = spark.sparkContext.defaultParallelism
    print(
        f"spark {master}: marts -> mapInArrow ({partitions} partitions, {workers} workers) -> decision log"
        f" table = {total:6.1f}s   {n / total:8,.0f} decisions/s end to end"
    )
    return total, got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--duckdb", type=Path, default=Path(os.environ.get("NBA_DUCKDB_PATH", "/tmp/nba-1m/warehouse.duckdb"))
    )
    ap.add_argument("--work", type=Path, default=None, help="scratch dir (default: beside the DuckDB file)")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--as-of", default="2026-11-27T14:00:00+00:00")
    ap.add_argument("--spark-first", action="store_true", help="run the Spark side first (load drifts)")
    args = ap.parse_args()
    if not args.duckdb.exists():
        raise SystemExit(f"no warehouse at {args.duckdb}: build one (see this file's docstring)")
    work = args.work or args.duckdb.parent / "bench_spark"
    work.mkdir(parents=True, exist_ok=True)
    as_of = datetime.fromisoformat(args.as_of).astimezone(UTC)
    print(
        f"warehouse {args.duckdb}  cores {os.cpu_count()}  load average {os.getloadavg()[0]:.1f} (shared machine)"
    )
    if args.spark_first:
        pipe = rules_pipeline(args.duckdb, as_of)
        print(f"[load {os.getloadavg()[0]:.1f}]", end=" ")
        t_spark, got = on_spark(args.duckdb, pipe, work, args.master, args.partitions)
        print(f"[load {os.getloadavg()[0]:.1f}]", end=" ")
        t_single, _pipe, want = single_process(args.duckdb, as_of, work)
    else:
        print(f"[load {os.getloadavg()[0]:.1f}]", end=" ")
        t_single, pipe, want = single_process(args.duckdb, as_of, work)
        print(f"[load {os.getloadavg()[0]:.1f}]", end=" ")
        t_spark, got = on_spark(args.duckdb, pipe, work, args.master, args.partitions)
    n = want.num_rows
    same = got.equals(want)
    print(f"ratio spark / one process (decisions/s, end to end): {t_single / t_spark:.2f}x")
    print(f"decisions: {n:,}   identical on both sides (ids, statuses, actions, context hashes): {same}")
    print(f"load average now {os.getloadavg()[0]:.1f}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
