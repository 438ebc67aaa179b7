"""Context blocks: one CustomerContext per segmented customer, read from the marts as Arrow batches.

Only the fields a decision needs leave the warehouse: no email, phone or address is ever selected,
so none can reach a prompt. The first name is the one personal token. Free text (the latest NPS
comment) is whitespace-normalised and length-capped here; the prompt quotes it as data.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any, cast

import duckdb
import pyarrow as pa

from agent.errors import WarehouseNotReady
from core.contracts import SEGMENTS, ContactEvent, CustomerContext
from core.reference import ReferenceData, load_reference

COMMENT_CAP = 280
BATCH_ROWS = 50_000

# The only columns a decision may see. Adding a column here is a privacy decision: review it.
_CONTEXT_SQL = """
select
    c.customer_id, s.segment, s.segment_reason,
    s.score_high_value_lapse_risk, s.score_new_users_first_week_intent, s.score_churn_rescue_nps,
    c.first_name, c.country, c.timezone, c.signup_date, c.tenure_days, c.orders_count,
    c.lifetime_revenue, c.avg_order_value, c.recency_days, c.usual_gap_days, c.rfm_segment,
    c.sessions_7d, c.sessions_30d, c.product_views_30d, c.add_to_cart_30d,
    c.latest_nps_score, c.latest_nps_comment,
    c.consent_email, c.consent_sms, c.consent_push, c.preferred_channel,
    c.last_contact_email_at, c.last_contact_sms_at, c.last_contact_push_at,
    c.is_globally_suppressed
from main.mart_marketing__customer_360 as c
join main.mart_marketing__segment_scores as s using (customer_id)
where s.segment is not null {filter}
order by c.customer_id
"""


def open_warehouse() -> duckdb.DuckDBPyConnection:
    """The configured warehouse, read-only, once it is shown to be ours (`with open_warehouse() as
    con` closes it): one line naming the file when it is missing, a directory, not DuckDB, truncated
    or another project's (warehouse.ownership.open_ours, which activation's readers use too)."""
    from warehouse.ownership import open_ours

    return open_ours(lambda path: WarehouseNotReady(f"no warehouse at {path}: run `make build` first"))


def cap_comment(text: str | None, cap: int = COMMENT_CAP) -> str | None:
    """Collapse whitespace and cap free text; the cut is marked so nobody mistakes it for the whole."""
    if text is None:
        return None
    flat = " ".join(str(text).split())
    if not flat:
        return None
    return flat if len(flat) <= cap else flat[: cap - 1].rstrip() + "…"


def _utc(ts: Any) -> datetime | None:
    if ts is None:
        return None
    if isinstance(ts, datetime):
        return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    return None


def context_from_row(r: dict[str, Any]) -> CustomerContext:
    signup = r["signup_date"]
    return CustomerContext.model_validate(
        {
            "customer_id": r["customer_id"],
            "segment": r["segment"],
            "segment_reason": r["segment_reason"] or "",
            "scores": {
                "high_value_lapse_risk": r["score_high_value_lapse_risk"] or 0.0,
                "new_users_first_week_intent": r["score_new_users_first_week_intent"] or 0.0,
                "churn_rescue_nps": r["score_churn_rescue_nps"] or 0.0,
            },
            "first_name": r["first_name"],
            "country": r["country"],
            "timezone": r["timezone"],
            "signup_date": signup if isinstance(signup, date) else date.fromisoformat(str(signup)),
            "tenure_days": r["tenure_days"] or 0,
            "orders_count": r["orders_count"] or 0,
            "lifetime_revenue": round(float(r["lifetime_revenue"] or 0.0), 2),
            "avg_order_value": round(float(r["avg_order_value"] or 0.0), 2),
            "recency_days": r["recency_days"],
            "usual_gap_days": None if r["usual_gap_days"] is None else round(float(r["usual_gap_days"]), 1),
            "rfm_segment": r["rfm_segment"] or "unknown",
            "sessions_7d": r["sessions_7d"] or 0,
            "sessions_30d": r["sessions_30d"] or 0,
            "product_views_30d": r["product_views_30d"] or 0,
            "add_to_cart_30d": r["add_to_cart_30d"] or 0,
            "nps_score": r["latest_nps_score"],
            "nps_comment": cap_comment(r["latest_nps_comment"]),
            "consent": {
                "email": bool(r["consent_email"]),
                "sms": bool(r["consent_sms"]),
                "push": bool(r["consent_push"]),
            },
            "preferred_channel": r["preferred_channel"],
            "last_contact": {
                "email": _utc(r["last_contact_email_at"]),
                "sms": _utc(r["last_contact_sms_at"]),
                "push": _utc(r["last_contact_push_at"]),
            },
            "globally_suppressed": bool(r["is_globally_suppressed"]),
        }
    )


def _arrow_batches(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any], rows: int
) -> Iterator[pa.RecordBatch]:
    """Stream a query as Arrow record batches (DuckDB 2 relation API; DB-API reader on 1.x)."""
    if hasattr(duckdb.DuckDBPyRelation, "to_arrow_reader"):
        yield from con.sql(sql, params=params or None).to_arrow_reader(rows)
    else:
        # DuckDB 1.x only; the installed stubs (2.x) no longer declare it
        yield from cast(Any, con.execute(sql, params)).fetch_record_batch(rows)


def _require_marts(con: duckdb.DuckDBPyConnection) -> None:
    names = {
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'main'"
        ).fetchall()
    }
    missing = {"mart_marketing__customer_360", "mart_marketing__segment_scores"} - names
    if missing:
        raise WarehouseNotReady(f"the warehouse has no {', '.join(sorted(missing))}: run `make build` first")


def iter_context_batches(
    con: duckdb.DuckDBPyConnection,
    *,
    segment: str = "all",
    customer_ids: Sequence[str] | None = None,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[list[CustomerContext]]:
    """Yield lists of contexts, one per Arrow record batch read from the joined marts."""
    _require_marts(con)
    clauses: list[str] = []
    params: list[Any] = []
    if segment != "all":
        if segment not in SEGMENTS:
            raise ValueError(f"unknown segment {segment!r}; valid: all, {', '.join(SEGMENTS)}")
        clauses.append("and s.segment = ?")
        params.append(segment)
    if customer_ids is not None:
        clauses.append("and c.customer_id in (select unnest(?::varchar[]))")
        params.append(list(customer_ids))
    for batch in _arrow_batches(con, _CONTEXT_SQL.format(filter=" ".join(clauses)), params, batch_rows):
        yield [context_from_row(r) for r in batch.to_pylist()]


def load_contexts(con: duckdb.DuckDBPyConnection, **kwargs: Any) -> list[CustomerContext]:
    return [c for batch in iter_context_batches(con, **kwargs) for c in batch]


def load_contact_history(
    con: duckdb.DuckDBPyConnection, *, since: datetime | None = None
) -> dict[str, list[ContactEvent]]:
    """The contact ledger (every destination, every channel) grouped by customer, as Arrow."""
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema='ops' and table_name='contact_ledger'"
    ).fetchall()
    if not exists or not exists[0][0]:
        raise WarehouseNotReady("the warehouse has no ops.contact_ledger: run `make build` first")
    sql = (
        "select customer_id, channel, destination, contacted_at, decision_id, run_id from ops.contact_ledger"
    )
    params: list[Any] = []
    if since is not None:
        sql += " where contacted_at >= ?"
        params.append(since.astimezone(UTC).replace(tzinfo=None))
    history: dict[str, list[ContactEvent]] = defaultdict(list)
    for r in (row for b in _arrow_batches(con, sql, params, BATCH_ROWS) for row in b.to_pylist()):
        r["contacted_at"] = _utc(r["contacted_at"])
        r["decision_id"] = r["decision_id"] or ""
        r["run_id"] = r["run_id"] or ""
        history[r["customer_id"]].append(ContactEvent.model_validate(r))
    return dict(history)


def data_as_of(con: duckdb.DuckDBPyConnection) -> datetime:
    """Default as_of: the data's as_of date at 14:00 UTC (explicit, so re-runs are reproducible)."""
    _require_marts(con)
    row = con.execute("select max(as_of_date) from main.mart_marketing__segment_scores").fetchall()[0]
    day = row[0] if row and row[0] else datetime.now(UTC).date()
    return datetime(day.year, day.month, day.day, 14, tzinfo=UTC)


def load_customer_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The distinct first names of the warehouse's customers (for the "no other customer's name"
    message check: real names, whatever produced the data)."""
    _require_marts(con)
    rows = con.execute(
        "select distinct first_name from main.mart_marketing__customer_360 where first_name is not null"
    ).fetchall()
    return sorted(r[0] for r in rows)


def reference_for(con: duckdb.DuckDBPyConnection) -> ReferenceData:
    """The reference data (dbt seeds) with this warehouse's customer first names."""
    return load_reference().with_customer_names(load_customer_names(con))
