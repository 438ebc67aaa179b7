"""The decision step on the Spark cluster: the same code path as in one process, per partition.

    customer 360 x segment scores (agent.context's own query, on the Spark marts)
      left join the contact history (one array of events per customer)
      -> mapInArrow: rows -> agent.context.context_from_row -> the run's Pipeline.decide
         -> warehouse.decision_log.decision_rows (+ each Decision and GuardrailReport as JSON)
      -> ops.decision_log on Spark (append, one job: all rows or none)

Nothing here decides. The driver builds the run's one `Pipeline` (its policy from `build_policy`,
rules or learned, the guardrail settings, reference data with the warehouse's customer first names,
run id, as_of) exactly as a local run does, and Spark broadcasts that object to the executors; a
partition calls its `decide`. So a customer's decision is the same whichever process makes it
(tests/production/test_spark.py holds decision ids, actions, context hashes, reasons, propensities
and guardrail reports equal to the single-process ones). LLM mode stays in one process: there the
endpoint, not the CPU, is the limit.

`activation.run.run_activation` opens a `SparkDecisionStep` when NBA_DECIDE_ON=spark: the decisions
come back to the driver for delivery (outbox or destinations); the DuckDB file keeps the contact
ledger and the delivery state (and, for learned mode, the training data the model is read from);
the Spark decision log is the warehouse's copy. Executors import this project: locally they run
this interpreter (`PYSPARK_PYTHON`); on a cluster install the project's wheel on the executors.
"""

from __future__ import annotations

import atexit
import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from agent.context import context_from_row
from agent.pipeline import Decided, Pipeline
from agent.spark.source import context_sql, spark_profile, spark_session
from core.config import RunConfig
from core.contracts import ContactEvent, Decision, GuardrailReport
from core.errors import ConfigError
from core.policy_kinds import kind, kinds
from core.reference import ReferenceData, load_reference
from warehouse.decision_log import decision_rows

DECISION_LOG = "ops.decision_log"
HISTORY_FIELDS = ("channel", "destination", "contacted_at", "decision_id", "run_id")
# what a partition returns: the decision log's columns, then the objects the driver delivers
PAYLOAD_FIELDS = [pa.field("decision_json", pa.string()), pa.field("report_json", pa.string())]
_SPARK_TYPES = {"string": "string", "double": "double", "int32": "int", "bool": "boolean"}


def log_columns() -> list[str]:
    return [f.name for f in decision_rows([], dry_run=True).schema]


def output_schema(payloads: bool = True) -> pa.Schema:
    """The decision log's columns (timestamps as UTC instants, Spark's `timestamp`) and, for a
    caller that needs the objects back (delivery), each Decision and GuardrailReport as JSON."""
    log = [
        pa.field(f.name, pa.timestamp("us", tz="UTC")) if pa.types.is_timestamp(f.type) else f
        for f in decision_rows([], dry_run=True).schema
    ]
    return pa.schema([*log, *(PAYLOAD_FIELDS if payloads else [])])


def _spark_ddl(schema: pa.Schema) -> str:
    def kind(t: pa.DataType) -> str:
        return "timestamp" if pa.types.is_timestamp(t) else _SPARK_TYPES[str(t)]

    return ", ".join(f"`{f.name}` {kind(f.type)}" for f in schema)


def require_spark_mode(config: RunConfig) -> None:
    if not kind(config.mode).on_spark:
        spark_modes = [k.name for k in kinds() if k.on_spark]
        raise ConfigError(
            "NBA_DECIDE_ON",
            f"spark decides in {' and '.join(spark_modes)} modes, not {config.mode}: the LLM endpoint, "
            "not the CPU, limits LLM mode; use NBA_DECIDE_ON=local",
        )


@dataclass(frozen=True)
class PartitionJob:
    """What every partition gets (broadcast once): the run's Pipeline and how to log."""

    pipe: Pipeline
    dry_run: bool
    payloads: bool = True


def _utc(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


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


def decide_batches(job: Any, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """One partition: Arrow context rows (+ history) in, decision rows out. Runs on an executor."""
    work: PartitionJob = job.value if hasattr(job, "value") else job  # a broadcast, or the job itself
    schema = output_schema(work.payloads)
    for batch in batches:
        rows = batch.to_pylist()
        if not rows:
            continue
        decided = work.pipe.decide([context_from_row(r) for r in rows], _history_of(rows))
        table = decision_rows(decided, dry_run=work.dry_run)
        if work.payloads:
            table = table.append_column(
                PAYLOAD_FIELDS[0], pa.array([d.model_dump_json() for d, _ in decided])
            )
            table = table.append_column(
                PAYLOAD_FIELDS[1], pa.array([r.model_dump_json() for _, r in decided])
            )
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
    pipe: Pipeline,
    history: Mapping[str, Sequence[ContactEvent]],
    *,
    segment: str = "all",
    dry_run: bool = True,
    schema: str | None = None,
    limit: int | None = None,
    partitions: int | None = None,
    payloads: bool = True,
) -> Any:
    """The decisions of `pipe` over the Spark marts, as a lazy DataFrame (output_schema() columns;
    `payloads=False`: the decision log's columns only, for a caller that only writes the log)."""
    contexts = spark.sql(context_sql(schema or spark_profile()[0], segment))
    if limit is not None:
        contexts = contexts.limit(limit)
    if history:
        contexts = contexts.join(history_frame(spark, history), "customer_id", "left")
    if partitions:
        contexts = contexts.repartition(partitions, "customer_id")
    job = spark.sparkContext.broadcast(PartitionJob(pipe, dry_run, payloads))
    return contexts.mapInArrow(functools.partial(decide_batches, job), _spark_ddl(output_schema(payloads)))


def write_decision_log(frame: Any, table: str = DECISION_LOG) -> None:
    """Append the decision-log columns to the Spark table (one job: a failed one commits nothing)."""
    frame.select(*log_columns()).write.insertInto(table)


def collect_decided(frame: Any) -> list[Decided]:
    """The decisions back on the driver, in customer order (the single-process order)."""
    table = frame.select("customer_id", *(f.name for f in PAYLOAD_FIELDS)).toArrow().sort_by("customer_id")
    return [
        (Decision.model_validate_json(d), GuardrailReport.model_validate_json(r))
        for d, r in zip(
            table.column("decision_json").to_pylist(), table.column("report_json").to_pylist(), strict=True
        )
    ]


class SparkDecisionStep:
    """The decision step of one activate run on Spark (NBA_DECIDE_ON=spark): the data's as_of and
    the reference data from the Spark marts, then `decide(pipe, history)`. The session stops after
    `decide` (or at exit, if the run fails before it)."""

    def __init__(self, settings: Any) -> None:
        require_spark_mode(settings)  # before any session is started or anything is written
        self.settings = settings
        self._stack = ExitStack()
        self.spark = self._stack.enter_context(spark_session())
        self.schema = spark_profile()[0]
        atexit.register(self.close)

    def close(self) -> None:
        self._stack.close()

    def data_as_of(self) -> datetime:
        """The CLI's default decision time, from the Spark marts: the data's as_of date, 14:00 UTC."""
        row = self.spark.sql(
            f"select max(as_of_date) from {self.schema}.mart_marketing__segment_scores"
        ).first()
        day = row[0] if row and row[0] else datetime.now(UTC).date()
        return datetime(day.year, day.month, day.day, 14, tzinfo=UTC)

    def reference(self) -> ReferenceData:
        """The reference data with the first names of the Spark marts' customers (agent.context's rule)."""
        names = self.spark.sql(
            f"select distinct first_name from {self.schema}.mart_marketing__customer_360 "
            "where first_name is not null"
        ).toArrow()
        return load_reference().with_customer_names(names.column(0).to_pylist())

    def decide(self, pipe: Pipeline, history: Mapping[str, Sequence[ContactEvent]]) -> list[Decided]:
        s = self.settings
        try:
            frame = decisions_frame(
                self.spark,
                pipe,
                history,
                segment=s.segment,
                dry_run=s.dry_run,
                schema=self.schema,
                limit=s.limit,
            ).persist()
            write_decision_log(frame)
            decided = collect_decided(frame)
            frame.unpersist()
            return decided
        finally:
            self.close()


def decided_json(decided: Sequence[Decided]) -> list[dict[str, Any]]:
    """Decisions and reports as plain JSON values (what the equality tests compare)."""
    return [json.loads(d.model_dump_json()) | {"report": json.loads(r.model_dump_json())} for d, r in decided]
