"""The same dbt project on Apache Spark (local mode), and the same decisions from it as from DuckDB.

Runs in the Spark virtualenv (`make test-spark` creates .venv-spark: the project + dbt-spark[session]
+ pyspark 4, Java 17). One module-scoped build: 2,000 demo customers (seed 42) generated once, then
`dbt build` on DuckDB and `dbt build --target spark` over the same Parquet files; every model, seed,
contract, unit test and data test must pass on both. Then rules-mode decisions from each engine's
marts, with identical settings and no contact history, must be identical.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from warehouse.dbt_runner import run_dbt
from warehouse.testing import DemoWarehouse, demo_layout, generate_demo_data

pytestmark = pytest.mark.spark

CUSTOMERS = 2000
SEED = 42
AS_OF = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


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


def _spark_contexts(spark_env: dict[str, str]) -> tuple[list, object]:
    from orchestration.spark_source import load_contexts_spark, read_context_arrow, spark_session

    saved = os.environ.get("NBA_SPARK_DIR")
    os.environ["NBA_SPARK_DIR"] = spark_env["NBA_SPARK_DIR"]
    try:
        with spark_session() as spark:
            arrow = read_context_arrow(spark)
            contexts = load_contexts_spark(spark)
    finally:
        if saved is None:
            os.environ.pop("NBA_SPARK_DIR", None)
        else:
            os.environ["NBA_SPARK_DIR"] = saved
    return contexts, arrow


def test_rules_decisions_from_spark_equal_decisions_from_duckdb(built: Built) -> None:
    import pyarrow as pa

    from agent.pipeline import Pipeline, RunSettings

    duck_contexts = _duckdb_contexts(built.demo)
    spark_contexts, arrow = _spark_contexts(built.spark_env)
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

    settings = RunSettings(
        run_id="spark-parity",
        as_of=AS_OF,
        mode="rules",
        segment="all",
        goal="90d_clv",
        discount_cap=5.0,
        suppress_hours=24.0,
    )
    from_duck = Pipeline(settings).decide_rules(duck_contexts, {})
    from_spark = Pipeline(settings).decide_rules(spark_contexts, {})

    def key(decided: tuple) -> tuple:
        d = decided[0]
        return (
            d.decision_id,
            d.customer_id,
            d.status,
            d.channel,
            d.template_id,
            d.discount_pct,
            d.subject,
            d.message,
            d.context_hash,
            d.arm,
            tuple(d.reasons),
        )

    assert [key(x) for x in from_spark] == [key(x) for x in from_duck]
    assert [x[0].model_dump() for x in from_spark] == [x[0].model_dump() for x in from_duck]
    assert [x[1].model_dump() for x in from_spark] == [x[1].model_dump() for x in from_duck]
    statuses = {x[0].status for x in from_duck}
    assert "send" in statuses and len(statuses) >= 3, statuses  # a real mix, not a degenerate run
