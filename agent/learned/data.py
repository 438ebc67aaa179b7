"""Training data contract: logged touches with outcomes, as one typed Arrow schema.

Two sources land in the same schema (`TOUCH_SCHEMA`):

- `mart_marketing__campaign_history`: a year of touches chosen by the incumbent logging policy, each
  with its exact propensity and its outcomes (`source = "history"`);
- the product's own decisions (`ops.decision_log`) joined to their observed outcomes
  (`ops.decision_outcomes`): treatment sends that have an outcome row, at the decision's `as_of`,
  with the propensity the policy logged (`source = "decision_log"`; 1.0 for rules decisions).

Reads are filtered in SQL: `before` keeps touches strictly before a cut-off, so a time split never
reads a touch after it; `customer_ids` restricts to some customers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from agent.errors import WarehouseNotReady

TOUCH_SCHEMA = pa.schema(
    [
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("touched_at", pa.timestamp("us"), nullable=False),
        pa.field("template_id", pa.string(), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("discount_pct", pa.float64(), nullable=False),
        pa.field("propensity", pa.float64(), nullable=False),
        pa.field("converted_14d", pa.bool_(), nullable=False),
        pa.field("revenue_90d", pa.float64(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
    ],
    metadata={"contract": "logged touches with outcomes, v1"},
)
SOURCES = ("history", "decision_log")

_HISTORY_SQL = """
select customer_id, touched_at, template_id, channel, discount_pct, propensity,
       converted_14d, coalesce(revenue_90d, 0.0) as revenue_90d, 'history' as source
from main.mart_marketing__campaign_history
where propensity > 0 {filter}
"""
# DuckDB keeps a single-table scan in storage order (preserve_insertion_order), so the unfiltered and
# segment-filtered reads are deterministic without a sort (sorting the whole history is costly);
# an id-list filter is a join, so that read is sorted (it is small: one run's customers).
_HISTORY_ORDER = " order by customer_id, touched_at, template_id, discount_pct, propensity, revenue_90d"

# A decision counts as a touch once it was sent to a treatment customer and its outcome is known.
_DECISIONS_SQL = """
select d.customer_id, d.as_of as touched_at, d.template_id, d.channel,
       coalesce(d.discount_pct, 0.0) as discount_pct, d.propensity,
       o.converted_14d, coalesce(o.revenue_90d, 0.0) as revenue_90d, 'decision_log' as source
from ops.decision_log as d
join (select distinct on (decision_id) * from ops.decision_outcomes order by decision_id, observed_at) as o
  using (decision_id)
-- live sends only (a dry-run decision reached no one: an outcome drawn for it says nothing about its
-- action), each decision once however many runs logged it
where d.arm = 'treatment' and d.status = 'send' and not d.dry_run and d.template_id is not null
  and d.channel is not null and d.propensity > 0 and o.converted_14d is not null {filter}
qualify row_number() over (partition by d.decision_id order by d.as_of, d.run_id) = 1
order by d.customer_id, d.as_of, d.decision_id
"""


def _naive_utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("select table_schema || '.' || table_name from information_schema.tables").fetchall()
    return {r[0] for r in rows}


def _arrow(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> pa.Table:
    rel = con.sql(sql, params=params or None)
    table = rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()
    return conform(table)


def conform(table: pa.Table) -> pa.Table:
    """Cast a table with the contract's columns to TOUCH_SCHEMA (column order, types, no nulls).
    A missing column or a null in a required one raises ValueError naming it."""
    missing = [f.name for f in TOUCH_SCHEMA if f.name not in table.column_names]
    if missing:
        raise ValueError(f"logged touches lack column(s) {missing}; the contract is {TOUCH_SCHEMA.names}")
    cols = []
    for f in TOUCH_SCHEMA:
        col = table.column(f.name)
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        col = col.cast(f.type)
        if col.null_count:
            raise ValueError(f"logged touches have {col.null_count} null {f.name!r} value(s)")
        cols.append(col)
    return pa.Table.from_arrays(cols, schema=TOUCH_SCHEMA)


def _filters(
    before: datetime | None, customer_ids: Sequence[str] | None, time_col: str, id_col: str
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if before is not None:
        clauses.append(f"and {time_col} < ?")
        params.append(_naive_utc(before))
    if customer_ids is not None:
        clauses.append(f"and {id_col} in (select unnest(?::varchar[]))")
        params.append(list(customer_ids))
    return " ".join(clauses), params


def campaign_history(
    con: duckdb.DuckDBPyConnection,
    *,
    before: datetime | None = None,
    customer_ids: Sequence[str] | None = None,
    segmented_only: bool = False,
) -> pa.Table:
    """The campaign history mart as TOUCH_SCHEMA rows (touched_at < `before` when given; only the
    customers in a segment today with `segmented_only`; only `customer_ids` when given)."""
    if "main.mart_marketing__campaign_history" not in _tables(con):
        raise WarehouseNotReady("the warehouse has no mart_marketing__campaign_history: run `make build`")
    where, params = _filters(before, customer_ids, "touched_at", "customer_id")
    if segmented_only:
        where += " and segment is not null"
    sql = _HISTORY_SQL.format(filter=where) + (_HISTORY_ORDER if customer_ids is not None else "")
    return _arrow(con, sql, params)


def own_decisions(
    con: duckdb.DuckDBPyConnection,
    *,
    before: datetime | None = None,
    customer_ids: Sequence[str] | None = None,
) -> pa.Table:
    """The product's own sent decisions with observed outcomes (empty when there are none yet)."""
    if not {"ops.decision_log", "ops.decision_outcomes"} <= _tables(con):
        return TOUCH_SCHEMA.empty_table()
    where, params = _filters(before, customer_ids, "d.as_of", "d.customer_id")
    return _arrow(con, _DECISIONS_SQL.format(filter=where), params)


def logged_touches(
    con: duckdb.DuckDBPyConnection,
    *,
    before: datetime | None = None,
    customer_ids: Sequence[str] | None = None,
    segmented_only: bool = False,
    include_own: bool = True,
) -> pa.Table:
    """Everything the learner trains on: the campaign history plus (when there are any) the product's
    own logged decisions and outcomes, in TOUCH_SCHEMA, sorted by customer then time."""
    parts = [campaign_history(con, before=before, customer_ids=customer_ids, segmented_only=segmented_only)]
    if include_own:
        own = own_decisions(con, before=before, customer_ids=customer_ids)
        if own.num_rows:
            parts.append(own)
    return pa.concat_tables(parts) if len(parts) > 1 else parts[0]
