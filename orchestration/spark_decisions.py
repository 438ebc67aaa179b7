"""The decision step on the Spark cluster: the same code path as in one process, per partition.

    customer 360 x segment scores (agent.context's own query, on the Spark marts)
      left join the contact history (collected per customer)
      -> mapInArrow: rows -> agent.context.context_from_row -> agent.pipeline.Pipeline.decide
         -> activation.decision_log.decision_rows (+ each Decision and GuardrailReport as JSON)
      -> ops.decision_log on Spark (append, one job: all rows or none)

Nothing here decides: a partition builds the one policy (`build_policy`, rules or learned) and the one
Pipeline, with the guardrail settings, reference data (with the warehouse's customer first names),
run id and as_of the driver fixed, so a customer's decision is the same object whichever process
makes it (decision ids, actions, context hashes; tests/production/test_spark.py holds them equal to
the single-process ones). LLM mode stays in one process: there the endpoint, not the CPU, is the limit.

`activation.run.run_activation` calls `decide_on_spark` when NBA_DECIDE_ON=spark: the decisions come
back to the driver for delivery (outbox or destinations), the DuckDB ops tables keep the contact
ledger and delivery state as before, and the Spark decision log is the warehouse's copy.
Executors import this project: locally they run this interpreter (`spark.pyspark.python`); on a
cluster install the project's wheel on the executors (or ship it with `spark.submit.pyFiles`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from activation.decision_log import decision_rows
from agent.context import context_from_row
from agent.pipeline import Decided, Pipeline
from agent.policies import build_policy
from core.config import LLMSettings, RunConfig, settings_from
from core.contracts import ContactEvent, Decision, GuardrailReport
from core.errors import ConfigError
from core.reference import ReferenceData, load_reference
from orchestration.spark_source import context_sql, spark_profile, spark_session

SPARK_MODES = ("rules", "learned")
DECISION_LOG = "ops.decision_log"
HISTORY_FIELDS = ("channel", "destination", "contacted_at", "decision_id", "run_id")
# what a partition returns: the decision log's columns, then the objects the driver delivers
PAYLOAD_FIELDS = [pa.field("decision_json", pa.string()), pa.field("report_json", pa.string())]


def output_schema() -> pa.Schema:
    """The decision log's columns (timestamps as UTC instants, Spark's `timestamp`) and the payloads."""
    log = [
        pa.field(f.name, pa.timestamp("us", tz="UTC")) if pa.types.is_timestamp(f.type) else f
        for f in decision_rows([], dry_run=True).schema
    ]
    return pa.schema([*log, *PAYLOAD_FIELDS])


def _spark_schema_ddl(schema: pa.Schema) -> str:
    kinds = {
        pa.string(): "string",
        pa.float64(): "double",
        pa.int32(): "int",
        pa.bool_(): "boolean",
        pa.timestamp("us", tz="UTC"): "timestamp",
    }
    return ", ".join(f"`{f.name}` {kinds[f.type]}" for f in schema)


def require_spark_mode(config: RunConfig) -> None:
    if config.mode not in SPARK_MODES:
        raise ConfigError(
            "NBA_DECIDE_ON",
            f"spark decides in {' and '.join(SPARK_MODES)} modes, not {config.mode}: the LLM endpoint, "
            "not the CPU, limits LLM mode; use NBA_DECIDE_ON=local",
        )


@dataclass(frozen=True)
class DecisionJob:
    """Everything a partition needs, fixed by the driver and shipped to the executors (no secrets:
    the run settings without the LLM endpoint's key or any destination credentials)."""

    config: RunConfig
    ref: ReferenceData
    run_id: str
    as_of: datetime
    dry_run: bool

    @classmethod
    def of(
        cls, config: RunConfig, *, ref: ReferenceData, run_id: str, as_of: datetime, dry_run: bool
    ) -> DecisionJob:
        values = {f: getattr(config, f) for f in RunConfig.model_fields if not f.startswith("openai_")}
        values["llm"] = LLMSettings()
        return cls(settings_from(RunConfig, **values), ref, run_id, as_of, dry_run)

    def pipeline(self) -> Pipeline:
        guard = self.config.guardrails()
        policy = build_policy(self.config, guard=guard, ref=self.ref)
        return Pipeline(policy, guard=guard, ref=self.ref, run_id=self.run_id, as_of=self.as_of)


def _history_of(rows: Sequence[dict[str, Any]]) -> dict[str, list[ContactEvent]]:
    out: dict[str, list[ContactEvent]] = {}
    for r in rows:
        events = r.get("history")
        if events:
            out[r["customer_id"]] = [
                ContactEvent.model_validate(
                    {
                        **e,
                        "customer_id": r["customer_id"],
                        "contacted_at": _utc(e["contacted_at"]),
                        "decision_id": e["decision_id"] or "",
                        "run_id": e["run_id"] or "",
                    }
                )
                for e in events
            ]
    return out


def _utc(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def decide_batches(job: DecisionJob, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """One partition: Arrow context rows (+ history) in, decision rows out. Runs on an executor."""
    pipe = job.pipeline()
    schema = output_schema()
    for batch in batches:
        rows = batch.to_pylist()
        if not rows:
            continue
        decided = pipe.decide([context_from_row(r) for r in rows], _history_of(rows))
        table = decision_rows(decided, dry_run=job.dry_run)
        table = table.append_column(PAYLOAD_FIELDS[0], pa.array([d.model_dump_json() for d, _ in decided]))
        table = table.append_column(PAYLOAD_FIELDS[1], pa.array([r.model_dump_json() for _, r in decided]))
        yield from table.cast(schema).to_batches()


def history_frame(spark: Any, history: Mapping[str, Sequence[ContactEvent]]) -> Any:
    """The contact history as a Spark DataFrame: one row per customer, their events as an array."""
    from pyspark.sql import functions as F

    events = [e for evs in history.values() for e in evs]
    table = pa.table(
        {
            "customer_id": pa.array([e.customer_id for e in events], pa.string()),
            "channel": pa.array([e.channel for e in events], pa.string()),
            "destination": pa.array([e.destination for e in events], pa.string()),
            "contacted_at": pa.array([e.contacted_at for e in events], pa.timestamp("us", tz="UTC")),
            "decision_id": pa.array([e.decision_id for e in events], pa.string()),
            "run_id": pa.array([e.run_id for e in events], pa.string()),
        }
    )
    return (
        spark.createDataFrame(table)
        .groupBy("customer_id")
        .agg(F.collect_list(F.struct(*HISTORY_FIELDS)).alias("history"))
    )


def decisions_frame(
    spark: Any,
    job: DecisionJob,
    history: Mapping[str, Sequence[ContactEvent]],
    *,
    schema: str | None = None,
    limit: int | None = None,
    partitions: int | None = None,
) -> Any:
    """The decisions of `job` over the Spark marts, as a lazy DataFrame (output_schema() columns)."""
    contexts = spark.sql(context_sql(schema or spark_profile()[0], job.config.segment))
    if limit is not None:
        contexts = contexts.limit(limit)
    if history:
        contexts = contexts.join(history_frame(spark, history), "customer_id", "left")
    if partitions:
        contexts = contexts.repartition(partitions, "customer_id")
    ddl = _spark_schema_ddl(output_schema())
    return contexts.mapInArrow(functools.partial(decide_batches, job), ddl)


def write_decision_log(frame: Any, table: str = DECISION_LOG) -> None:
    """Append the decision-log columns to the Spark table (one job: a failed one commits nothing)."""
    columns = [f.name for f in decision_rows([], dry_run=True).schema]
    frame.select(*columns).write.insertInto(table)


def collect_decided(frame: Any) -> list[Decided]:
    """The decisions back on the driver, in customer order (the single-process order)."""
    table = frame.select("customer_id", *(f.name for f in PAYLOAD_FIELDS)).toArrow()
    table = table.sort_by("customer_id")
    return [
        (Decision.model_validate_json(d), GuardrailReport.model_validate_json(r))
        for d, r in zip(
            table.column("decision_json").to_pylist(), table.column("report_json").to_pylist(), strict=True
        )
    ]


def spark_data_as_of(spark: Any, schema: str) -> datetime:
    """The CLI's default decision time, from the Spark marts: the data's as_of date, 14:00 UTC."""
    day = spark.sql(f"select max(as_of_date) from {schema}.mart_marketing__segment_scores").first()[0]
    day = day or datetime.now(UTC).date()
    return datetime(day.year, day.month, day.day, 14, tzinfo=UTC)


def spark_reference(spark: Any, schema: str) -> ReferenceData:
    rows = spark.sql(
        f"select distinct first_name from {schema}.mart_marketing__customer_360 where first_name is not null"
    ).toArrow()
    return load_reference().with_customer_names(rows.column(0).to_pylist())


def decide_on_spark(
    con: Any, settings: Any, *, run_id: str
) -> tuple[datetime, list[Decided], dict[str, int]]:
    """The activate run's decision step on Spark (NBA_DECIDE_ON=spark): (as_of, decisions, stats).

    The contact history is the DuckDB contact ledger (the ledger of record, written by delivery);
    the decision log is appended to Spark's ops.decision_log before anything is delivered."""
    from activation.run import history_since
    from agent.context import load_contact_history
    from warehouse.ops_tables import ensure_ops_tables

    require_spark_mode(settings)
    ensure_ops_tables(con)  # DuckDB keeps the contact ledger and the delivery state
    with spark_session() as spark:
        schema = spark_profile()[0]
        as_of = settings.as_of or spark_data_as_of(spark, schema)
        history = load_contact_history(con, since=history_since(settings, as_of))
        job = DecisionJob.of(
            settings, ref=spark_reference(spark, schema), run_id=run_id, as_of=as_of, dry_run=settings.dry_run
        )
        frame = decisions_frame(spark, job, history, schema=schema, limit=settings.limit)
        frame = frame.persist()
        try:
            write_decision_log(frame)
            decided = collect_decided(frame)
        finally:
            frame.unpersist()
    return as_of, decided, {"llm_calls": 0, "cache_hits": 0}


def decided_json(decided: Sequence[Decided]) -> list[dict[str, Any]]:
    """Decisions and reports as plain JSON values (what the equality tests compare)."""
    return [json.loads(d.model_dump_json()) | {"report": json.loads(r.model_dump_json())} for d, r in decided]
