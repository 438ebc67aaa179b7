"""The same dbt project on Apache Spark (local mode), and the same decisions from it as from DuckDB,
whether one process decides or Spark's workers do.

Runs in the Spark virtualenv (`make test-spark` creates .venv-spark: the project + dbt-spark[session]
+ pyspark 4, Java 17). One module-scoped build: 2,000 demo customers (seed 42) generated once, then
`dbt build` on DuckDB and `dbt build --target spark` over the same Parquet files; every model, seed,
contract, unit test and data test must pass on both. Then:
- the contexts from each engine's marts are identical (and so are their hashes);
- the decision step on Spark (mapInArrow over partitions, 2 local workers, with a contact history)
  gives exactly the single-process decisions and guardrail reports, and its decision log table
  holds exactly those rows;
- in rules and learned modes; `activate` with NBA_DECIDE_ON=spark writes the same decision log and
  outbox as a local run, and LLM mode on Spark is refused with one line, nothing written.
Spark work runs in this process after the CLI subprocess tests (Derby admits one process).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.contracts import ContactEvent
from testing.demo_warehouse import DemoWarehouse, demo_layout, generate_demo_data
from warehouse.dbt_runner import run_dbt

pytestmark = pytest.mark.spark

CUSTOMERS = 2000
SEED = 42
AS_OF = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
REPO_ROOT = Path(__file__).resolve().parents[2]


def _require_spark() -> None:
    missing = []
    try:
        import dbt.adapters.spark  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError as exc:
        missing.append(str(exc))
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        missing.append("no java on PATH and no JAVA_HOME (Spark needs Java 17)")
    if missing:
        pytest.fail(
            "the Spark tests need pyspark, dbt-spark[session] and Java 17: `make test-spark` creates "
            f".venv-spark and runs them ({'; '.join(missing)})",
            pytrace=False,
        )


def _results(target_dir: Path) -> dict[str, list[str]]:
    """resource type -> statuses of the last dbt invocation (from run_results.json)."""
    results = json.loads((target_dir / "run_results.json").read_text(encoding="utf-8"))["results"]
    by_type: dict[str, list[str]] = {}
    for r in results:
        by_type.setdefault(r["unique_id"].split(".")[0], []).append(r["status"])
    return by_type


class Built:
    def __init__(self, demo: DemoWarehouse, spark_env: dict[str, str]) -> None:
        self.demo = demo
        self.spark_env = spark_env


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    _require_spark()
    root = tmp_path_factory.mktemp("spark_parity")
    demo = demo_layout(root, customers=CUSTOMERS, seed=SEED)
    generate_demo_data(demo)
    run_dbt(["build"], env=demo.env)  # DuckDB (target dev)
    spark_env = {
        **demo.env,
        "NBA_DBT_TARGET": "spark",
        "NBA_SPARK_DIR": str(root / "spark"),
        "DBT_TARGET_PATH": str(root / "spark_target"),
        "DBT_LOG_PATH": str(root / "spark_logs"),
    }
    run_dbt(["build"], env=spark_env)  # raises DbtFailed naming the failing nodes
    return Built(demo, spark_env)


def test_dbt_build_passes_on_spark_like_on_duckdb(built: Built) -> None:
    spark = _results(Path(built.spark_env["DBT_TARGET_PATH"]))
    duck = _results(built.demo.target_dir)
    for kind in ("seed", "model", "test", "unit_test"):
        assert spark.get(kind), f"no {kind} ran on Spark"
        assert set(spark[kind]) <= {"success", "pass"}, (kind, spark[kind])
        assert len(spark[kind]) == len(duck[kind]), (
            f"{kind}: {len(spark[kind])} on Spark vs {len(duck[kind])} on DuckDB"
        )


def _duckdb_contexts(demo: DemoWarehouse) -> list:
    import duckdb

    from agent.context import load_contexts

    with duckdb.connect(str(demo.duckdb_path), read_only=True) as con:
        return load_contexts(con)


def _duckdb_reference(demo: DemoWarehouse):  # type: ignore[no-untyped-def]
    import duckdb

    from agent.context import reference_for

    with duckdb.connect(str(demo.duckdb_path), read_only=True) as con:
        return reference_for(con)


def _history(contexts: list) -> dict[str, list[ContactEvent]]:
    """A contact history that changes decisions: every 7th customer was emailed 3 hours before as_of
    (inside the 24 h window: suppressed), every 11th had an SMS 2 days ago (SMS cap 1 per 7 days)."""
    history: dict[str, list[ContactEvent]] = {}
    for i, c in enumerate(contexts):
        events = []
        if i % 7 == 0:
            events.append(("email", AS_OF - timedelta(hours=3)))
        if i % 11 == 0:
            events.append(("sms", AS_OF - timedelta(days=2)))
        if events:
            history[c.customer_id] = [
                ContactEvent(
                    customer_id=c.customer_id,
                    channel=ch,
                    destination="hubspot",
                    contacted_at=at,
                    decision_id=f"d{i}",
                    run_id="earlier",
                )
                for ch, at in events
            ]
    return history


def _config(mode: str):  # type: ignore[no-untyped-def]
    from core.config import RunConfig, settings_from

    return settings_from(
        RunConfig, mode=mode, segment="all", goal="90d_clv", discount_cap=5.0, suppress_hours=24.0
    )


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("NBA_", "DBT_"))} | env
    return subprocess.run(
        [sys.executable, "-m", "activation.cli", "activate", *args],
        cwd=REPO_ROOT,
        env=full,
        text=True,
        capture_output=True,
        timeout=900,
    )


def _decision_log(duckdb_path: Path) -> list[tuple]:
    import duckdb

    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        return con.execute("select * exclude (run_id) from ops.decision_log order by customer_id").fetchall()


# --- the CLI first: each subprocess starts its own Spark (Derby admits one process at a time) -------


def test_llm_mode_on_spark_is_refused_in_one_line(built: Built, tmp_path: Path) -> None:
    env = {**built.spark_env, "NBA_DECIDE_ON": "spark", "NBA_DUCKDB_PATH": str(tmp_path / "ledger.duckdb")}
    proc = _cli(env, "--mode", "llm", "--dry-run", "--output", "json", "--no-progress")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: NBA_DECIDE_ON: spark decides in rules and learned")
    assert not (tmp_path / "ledger.duckdb").exists(), "a refused run must write nothing"


# learned on Spark is held equal in process below; one CLI round trip (rules) keeps CI's time down
@pytest.mark.parametrize("mode", ["rules"])
def test_activate_decides_on_spark_like_locally(built: Built, tmp_path: Path, mode: str) -> None:
    args = ("--mode", mode, "--as-of", AS_OF.isoformat(), "--dry-run", "--output", "json", "--no-progress")
    models = {"NBA_MODELS_DIR": str(tmp_path / "models")}  # the learned model: trained once, then reused
    local_db = tmp_path / "local.duckdb"
    shutil.copy(built.demo.duckdb_path, local_db)
    local_env = {
        **built.demo.env,
        **models,
        "NBA_DUCKDB_PATH": str(local_db),
        "NBA_OUTBOX_DIR": str(tmp_path / "o1"),
    }
    local = _cli(local_env, *args)
    assert local.returncode == 0, local.stderr
    # Spark mode: the marts are Spark's. Rules need no marts in the DuckDB file (it keeps the ops
    # tables only); the learned model reads its training data from the DuckDB warehouse.
    spark_db = tmp_path / "ledger.duckdb"
    if mode == "learned":
        shutil.copy(built.demo.duckdb_path, spark_db)
    env = {
        **built.spark_env,
        **models,
        "NBA_DECIDE_ON": "spark",
        "NBA_DUCKDB_PATH": str(spark_db),
        "NBA_OUTBOX_DIR": str(tmp_path / "o2"),
    }
    spark = _cli(env, *args)
    assert spark.returncode == 0, spark.stderr[-3000:]
    s_local, s_spark = json.loads(local.stdout), json.loads(spark.stdout)
    assert s_spark["counts"] == s_local["counts"] and s_local["counts"]["send"] > 0
    assert s_spark["by_segment"] == s_local["by_segment"] and s_spark["reasons"] == s_local["reasons"]
    assert s_spark["model"] == s_local["model"] and (mode == "rules") == (s_local["model"] is None)
    assert _decision_log(spark_db) == _decision_log(local_db)
    # the outbox holds the same payloads (ids, actions, messages), whoever decided
    for name in ("hubspot.jsonl", "salesforce.jsonl", "webhook.jsonl"):
        a = sorted((tmp_path / "o1" / s_local["run_id"] / name).read_text().splitlines())
        b = sorted((tmp_path / "o2" / s_spark["run_id"] / name).read_text().splitlines())
        assert [x.replace(s_local["run_id"], "RUN") for x in a] == [
            x.replace(s_spark["run_id"], "RUN") for x in b
        ]


# --- in this process: one Spark session for the rest of the module --------------------------------


@pytest.fixture(scope="module")
def spark(built: Built):  # type: ignore[no-untyped-def]
    from agent.spark.source import spark_session

    saved = os.environ.get("NBA_SPARK_DIR")
    os.environ["NBA_SPARK_DIR"] = built.spark_env["NBA_SPARK_DIR"]
    try:
        with spark_session(**{"spark.master": "local[2]"}) as session:
            yield session
    finally:
        if saved is None:
            os.environ.pop("NBA_SPARK_DIR", None)
        else:
            os.environ["NBA_SPARK_DIR"] = saved


def test_contexts_from_spark_equal_contexts_from_duckdb(built: Built, spark) -> None:  # type: ignore[no-untyped-def]
    import pyarrow as pa

    from agent.spark.source import load_contexts_spark, read_context_arrow

    duck_contexts = _duckdb_contexts(built.demo)
    arrow = read_context_arrow(spark)
    spark_contexts = load_contexts_spark(spark)
    assert isinstance(arrow, pa.Table) and arrow.num_rows == len(spark_contexts)
    assert len(duck_contexts) > 100
    assert {c.segment for c in duck_contexts} == {
        "high_value_lapse_risk",
        "new_users_first_week_intent",
        "churn_rescue_nps",
    }
    assert [c.customer_id for c in spark_contexts] == [c.customer_id for c in duck_contexts]
    for d, s in zip(duck_contexts, spark_contexts, strict=True):
        assert s.model_dump() == d.model_dump(), f"context of {d.customer_id} differs between engines"
        assert s.context_hash() == d.context_hash()


@pytest.mark.parametrize("mode", ["rules", "learned"])
def test_decisions_on_spark_workers_equal_single_process(
    built: Built, spark, mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """The equality the Spark decision step rests on: same decisions, reports and log rows."""
    import duckdb
    from pyspark.sql import functions as F

    from agent.pipeline import Pipeline
    from agent.spark.decisions import (
        collect_decided,
        decided_json,
        decisions_frame,
        write_decision_log,
    )
    from warehouse.decision_log import decision_rows

    monkeypatch.setenv("NBA_MODELS_DIR", str(tmp_path / "models"))
    contexts = _duckdb_contexts(built.demo)
    history = _history(contexts)
    config = _config(mode)
    ref = _duckdb_reference(built.demo)
    with duckdb.connect(str(built.demo.duckdb_path), read_only=True) as con:
        pipe = Pipeline.from_config(config, run_id="parity", as_of=AS_OF, ref=ref, con=con)
    local = pipe.decide(contexts, history)

    frame = decisions_frame(spark, pipe, history, dry_run=True, partitions=4).persist()
    distributed = collect_decided(frame)
    assert frame.select(F.spark_partition_id()).distinct().count() == 4  # decided in 4 partitions

    assert len(distributed) == len(local) == len(contexts)

    def key(d):  # type: ignore[no-untyped-def]
        return (
            d.decision_id,
            d.customer_id,
            d.status,
            d.channel,
            d.template_id,
            d.discount_pct,
            d.context_hash,
        )

    assert [key(d) for d, _ in distributed] == [key(d) for d, _ in local]
    assert decided_json(distributed) == decided_json(local)  # every field, reports included
    statuses = {d.status for d, _ in local}
    assert {"send", "suppressed", "holdout"} <= statuses, statuses  # a real mix, history included
    assert sum("suppression_window" in d.reasons for d, _ in local) > 0
    if mode == "learned":  # exploration: true propensities and distributions, equal on both sides
        sends = [d for d, _ in local if d.status == "send"]
        assert all(d.policy.startswith("learned") for d in sends)
        assert any(d.propensity < 1 for d in sends) and all(
            d.action_pmf for d in sends if d.policy == "learned"
        )

    # the decision log table on Spark holds exactly the single-process rows
    spark.sql("create database if not exists parity")
    spark.sql("drop table if exists parity.decision_log")
    spark.sql("create table parity.decision_log like ops.decision_log")
    write_decision_log(frame, "parity.decision_log")
    frame.unpersist()
    got = spark.sql("select * from parity.decision_log").toArrow().sort_by("customer_id").to_pylist()
    want = decision_rows(local, dry_run=True).to_pylist()
    for row in got:  # Spark's timestamps come back as UTC instants; the DuckDB rows are naive UTC
        for col in ("as_of", "defer_until"):
            if row[col] is not None:
                row[col] = row[col].astimezone(UTC).replace(tzinfo=None)
    assert got == want
