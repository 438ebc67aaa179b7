"""Customer contexts read from the marts on Spark, as Arrow, for the same decision step DuckDB feeds.

    from agent.spark.source import spark_session, load_contexts_spark
    with spark_session() as spark:
        contexts = load_contexts_spark(spark, segment="all")

The SQL is agent.context's own context query (same columns, same join, same order) pointed at the
Spark schema the `spark` dbt target builds; the rows come back through `DataFrame.toArrow()` and go
through `agent.context.context_from_row`, so a context built from Spark is the same object, with the
same context hash, as one built from DuckDB. The session is configured from the committed
profiles.yml `spark` output (same metastore, warehouse dir and time zone as the dbt build), so the
two never drift. Needs pyspark >= 4 (toArrow) and Java 17: the `.venv-spark` environment.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jinja2
import yaml  # type: ignore[import-untyped]

from agent.context import _CONTEXT_SQL, context_from_row
from core.contracts import SEGMENTS, CustomerContext
from warehouse.paths import DBT_DIR, home

PROFILES = DBT_DIR / "profiles.yml"
DEFAULT_SPARK_DIR = "warehouse/data/spark"


def _render(value: Any) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.globals["env_var"] = lambda name, default=None: os.environ.get(name, default)
    return env.from_string(str(value)).render()


def spark_profile() -> tuple[str, dict[str, str]]:
    """(schema, Spark conf) of the committed profile's `spark` output, rendered like dbt renders it.

    A relative NBA_SPARK_DIR is taken relative to home() (the repo root in a clone), as dbt, run from
    there, takes it.
    """
    spark_dir = os.environ.get("NBA_SPARK_DIR") or DEFAULT_SPARK_DIR
    if not Path(spark_dir).is_absolute():
        os.environ["NBA_SPARK_DIR"] = str(home() / spark_dir)
    output = yaml.safe_load(PROFILES.read_text(encoding="utf-8"))["nba_warehouse"]["outputs"]["spark"]
    conf = {str(k): _render(v) for k, v in (output.get("server_side_parameters") or {}).items()}
    conf["spark.sql.ansi.enabled"] = "false"  # what dbt-spark forces on its sessions
    return _render(output["schema"]), conf


@contextmanager
def spark_session(app_name: str = "nba-decisions", **conf_overrides: str) -> Iterator[Any]:
    """A SparkSession on the dbt build's metastore (master: NBA_SPARK_MASTER, default local[2]);
    stopped on exit (Derby allows one process). Python workers run this interpreter."""
    from pyspark.sql import SparkSession

    _schema, conf = spark_profile()
    # PySpark starts its Python workers with PYSPARK_PYTHON (default: `python3` on PATH), not this
    # interpreter: point it here so the workers import this project and its dependencies.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    conf.setdefault("spark.ui.showConsoleProgress", "false")
    conf.update(conf_overrides)
    builder = SparkSession.builder.appName(app_name).enableHiveSupport()
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    try:
        yield spark
    finally:
        spark.stop()


def context_sql(schema: str, segment: str = "all") -> str:
    """agent.context's query against `schema` (the dbt target's schema) instead of DuckDB's `main`."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", schema):
        raise ValueError(f"not a plain schema name: {schema!r}")
    where = ""
    if segment != "all":
        if segment not in SEGMENTS:
            raise ValueError(f"unknown segment {segment!r}; valid: all, {', '.join(SEGMENTS)}")
        where = f"and s.segment = '{segment}'"
    return re.sub(r"\bmain\.", f"{schema}.", _CONTEXT_SQL).format(filter=where)


def read_context_arrow(spark: Any, *, schema: str | None = None, segment: str = "all") -> Any:
    """The context rows as one pyarrow Table, computed by Spark."""
    schema = schema or spark_profile()[0]
    return spark.sql(context_sql(schema, segment)).toArrow()


def load_contexts_spark(
    spark: Any, *, schema: str | None = None, segment: str = "all"
) -> list[CustomerContext]:
    table = read_context_arrow(spark, schema=schema, segment=segment)
    return [context_from_row(r) for batch in table.to_batches() for r in batch.to_pylist()]
