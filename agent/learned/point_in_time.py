"""The customer block of a training row as of that row's touch: the customer 360 and segment scores
as the nightly build of the touch's day would have shown them, from facts dated before that day.

`CustomerTimeline.load` reads, once, the dated facts the 360 is built from (revenue orders with their
running totals, web activity per day with running totals, NPS answers, the static customer columns)
for the customers being featurised; `base_table` then computes the `_CUSTOMER_SQL` columns for any
(customer, timestamp) pairs with DuckDB as-of joins (one match per row and fact table: no range join
over the touches), so training computes it only for the rows it samples, and a decision made now
keeps reading the mart itself.

The definitions mirror the dbt models (int_orders_summarized_to_customers,
int_web_events_rolled_up_to_customers, int_nps_responses_ranked_to_latest,
mart_marketing__customer_360, mart_marketing__segment_scores) and read the segment thresholds from
the dbt project's vars; a test checks that the block as of the data's date equals the marts'.
Three approximations, each said where it happens: RFM quintiles use the cut points of a fixed sample
of customers (all of them in a small warehouse) at the row's date; a web window that starts before
the warehouse's first web event is unknown (null), not zero; consent and preferred channel have no
history in the warehouse, so they are today's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import yaml  # type: ignore[import-untyped]  # no stubs installed; safe_load only

from warehouse.paths import DBT_DIR

RFM_SAMPLE = 5_000  # customers whose quintile cut points stand for the population's at a past date
_WHO = "customer_id in (select unnest(?::varchar[]))"
_STATIC_SQL = f"""
select customer_id, signup_date, consent_email, consent_sms, consent_push, preferred_channel
from main.dim_customer where {_WHO}
"""
# running totals per revenue order (peers share one total, so an as-of match never splits a tie)
_ORDERS_SQL = """
select customer_id, ordered_at,
    count(*) over running as orders_count,
    sum(amount) over running as lifetime_revenue,
    min(ordered_at) over (partition by customer_id) as first_order_at
from main.stg_raw__orders
where is_revenue and {who}
window running as (partition by customer_id order by ordered_at)
"""
_WEB_SQL = f"""
with daily as (
    select customer_id, cast(event_at as date) as event_date,
        count(distinct case when event_type = 'session_start' then session_id end) as sessions,
        sum(case when event_type = 'product_view' then 1 else 0 end) as product_views,
        sum(case when event_type = 'add_to_cart' then 1 else 0 end) as add_to_carts,
        sum(case when event_type = 'checkout' then 1 else 0 end) as checkouts
    from main.stg_raw__web_events
    where {_WHO}
    group by customer_id, cast(event_at as date)
)
select customer_id, event_date,
    sum(sessions) over running as sessions,
    sum(product_views) over running as product_views,
    sum(add_to_carts) over running as add_to_carts,
    sum(checkouts) over running as checkouts
from daily
window running as (partition by customer_id order by event_date)
"""
_NPS_SQL = f"""
select customer_id, responded_at, score
from main.stg_raw__nps_responses where {_WHO}
-- the latest answer wins; on a tie, the higher response id (as int_nps_responses_ranked_to_latest)
qualify row_number() over (partition by customer_id, responded_at order by response_id desc) = 1
"""
_WEB_START_SQL = "select min(cast(event_at as date)) from main.stg_raw__web_events"
_SAMPLE_SQL = f"select customer_id from main.dim_customer order by md5(customer_id) limit {RFM_SAMPLE}"

# The 360 and segment-score columns of `features._CUSTOMER_SQL`, as of each spine row's day.
_AS_OF_SQL = """
with
spine as (
    select i, customer_id, as_of_date, cast(as_of_date as timestamp) as as_of_ts,
        cast(as_of_date - interval 7 day as date) as d7,
        cast(as_of_date - interval 30 day as date) as d30
    from spine_t
),
ord as (
    select s.i, o.orders_count, o.lifetime_revenue, o.first_order_at, o.ordered_at as last_order_at
    from spine as s asof left join orders_t as o
        on s.customer_id = o.customer_id and s.as_of_ts > o.ordered_at
),
web_now as (
    select s.i, w.sessions, w.product_views, w.add_to_carts, w.checkouts
    from spine as s asof left join web_t as w on s.customer_id = w.customer_id and s.as_of_date > w.event_date
),
web_7 as (
    select s.i, w.sessions
    from spine as s asof left join web_t as w on s.customer_id = w.customer_id and s.d7 > w.event_date
),
web_30 as (
    select s.i, w.sessions, w.product_views, w.add_to_carts, w.checkouts
    from spine as s asof left join web_t as w on s.customer_id = w.customer_id and s.d30 > w.event_date
),
nps as (
    select s.i, n.score as latest_nps_score, n.responded_at as latest_nps_at
    from spine as s asof left join nps_t as n
        on s.customer_id = n.customer_id and s.as_of_ts > n.responded_at
),
joined as (
    select
        s.i, s.customer_id, s.as_of_date,
        date_diff('day', c.signup_date::timestamp, s.as_of_ts) as tenure_days,
        coalesce(o.orders_count, 0) as orders_count,
        coalesce(o.lifetime_revenue, 0) as lifetime_revenue,
        coalesce(o.lifetime_revenue / o.orders_count, 0) as avg_order_value,
        date_diff('day', o.last_order_at, s.as_of_ts) as recency_days,
        case when o.orders_count >= 2
            then cast(date_diff('second', o.first_order_at, o.last_order_at) as double)
                / 86400.0 / (o.orders_count - 1)
        end as usual_gap_days,
        -- a window that starts before the warehouse's first web event is unknown, not zero
        case when {web_known_7} then coalesce(wn.sessions, 0) - coalesce(w7.sessions, 0) end as sessions_7d,
        case when {web_known_30} then coalesce(wn.sessions, 0) - coalesce(w30.sessions, 0) end
            as sessions_30d,
        case when {web_known_30} then coalesce(wn.product_views, 0) - coalesce(w30.product_views, 0) end
            as product_views_30d,
        case when {web_known_30} then coalesce(wn.add_to_carts, 0) - coalesce(w30.add_to_carts, 0) end
            as add_to_cart_30d,
        case when {web_known_30} then coalesce(wn.checkouts, 0) - coalesce(w30.checkouts, 0) end
            as checkouts_30d,
        n.latest_nps_score,
        date_diff('day', n.latest_nps_at, s.as_of_ts) as nps_days_ago,
        c.consent_email, c.consent_sms, c.consent_push, c.preferred_channel
    from spine as s
    join static_t as c on s.customer_id = c.customer_id
    left join ord as o on s.i = o.i
    left join web_now as wn on s.i = wn.i
    left join web_7 as w7 on s.i = w7.i
    left join web_30 as w30 on s.i = w30.i
    left join nps as n on s.i = n.i
),
rfm as (
    select j.*,
        case when j.usual_gap_days > 0 then j.recency_days / j.usual_gap_days end as gap_ratio,
        -- ntile(5) among the customers with orders, past that date's quintile boundaries
        case when j.orders_count > 0 then 1
            + coalesce((j.recency_days < k.r1 or (j.recency_days = k.r1 and j.customer_id > k.r1_id)), false)::integer
            + coalesce((j.recency_days < k.r2 or (j.recency_days = k.r2 and j.customer_id > k.r2_id)), false)::integer
            + coalesce((j.recency_days < k.r3 or (j.recency_days = k.r3 and j.customer_id > k.r3_id)), false)::integer
            + coalesce((j.recency_days < k.r4 or (j.recency_days = k.r4 and j.customer_id > k.r4_id)), false)::integer
            else 1 end as rfm_recency_score,
        case when j.orders_count > 0 then 1
            + coalesce((j.orders_count > k.f1 or (j.orders_count = k.f1 and j.customer_id > k.f1_id)), false)::integer
            + coalesce((j.orders_count > k.f2 or (j.orders_count = k.f2 and j.customer_id > k.f2_id)), false)::integer
            + coalesce((j.orders_count > k.f3 or (j.orders_count = k.f3 and j.customer_id > k.f3_id)), false)::integer
            + coalesce((j.orders_count > k.f4 or (j.orders_count = k.f4 and j.customer_id > k.f4_id)), false)::integer
            else 1 end as rfm_frequency_score,
        case when j.orders_count > 0 then 1
            + coalesce((j.lifetime_revenue > k.m1 or (j.lifetime_revenue = k.m1 and j.customer_id > k.m1_id)), false)::integer
            + coalesce((j.lifetime_revenue > k.m2 or (j.lifetime_revenue = k.m2 and j.customer_id > k.m2_id)), false)::integer
            + coalesce((j.lifetime_revenue > k.m3 or (j.lifetime_revenue = k.m3 and j.customer_id > k.m3_id)), false)::integer
            + coalesce((j.lifetime_revenue > k.m4 or (j.lifetime_revenue = k.m4 and j.customer_id > k.m4_id)), false)::integer
            else 1 end as rfm_monetary_score
    from joined as j
    left join cuts_t as k on j.as_of_date = k.as_of_date
),
scored as (
    select *,
        case when gap_ratio is null then 0.0
            else (rfm_monetary_score / 5.0) * least(gap_ratio / (2.0 * {hv_min_gap_ratio}), 1.0)
        end as score_high_value_lapse_risk,
        case when tenure_days <= {nu_max_tenure_days} and orders_count = 0
            then least((sessions_7d + 0.5 * product_views_30d + 2.0 * add_to_cart_30d) / 10.0, 1.0)
            else 0.0
        end as score_new_users_first_week_intent,
        case when nps_days_ago <= {nps_recent_days} then (10 - latest_nps_score) / 10.0 else 0.0 end
            as score_churn_rescue_nps,
        coalesce(latest_nps_score <= {nps_detractor_max_score} and nps_days_ago <= {nps_recent_days}, false)
            as in_churn,
        (rfm_monetary_score >= {hv_min_monetary_score} or lifetime_revenue >= {hv_min_lifetime_revenue})
            and coalesce(gap_ratio >= {hv_min_gap_ratio} and recency_days >= {hv_min_recency_days}, false)
            as in_high_value,
        tenure_days <= {nu_max_tenure_days} and orders_count = 0
            and (sessions_7d >= {nu_min_sessions_7d} or product_views_30d >= {nu_min_product_views})
            as in_new_users
    from rfm
)
select
    customer_id,
    case when in_churn then 'churn_rescue_nps' when in_high_value then 'high_value_lapse_risk'
        when in_new_users then 'new_users_first_week_intent' end as segment,
    tenure_days, orders_count, lifetime_revenue, avg_order_value, recency_days, usual_gap_days,
    gap_ratio, rfm_recency_score, rfm_frequency_score, rfm_monetary_score,
    sessions_7d, sessions_30d, product_views_30d, add_to_cart_30d, checkouts_30d,
    latest_nps_score, consent_email, consent_sms, consent_push, preferred_channel,
    score_high_value_lapse_risk, score_new_users_first_week_intent, score_churn_rescue_nps
from scored
order by i
"""
_SEGMENT_VARS = (
    "hv_min_monetary_score",
    "hv_min_lifetime_revenue",
    "hv_min_gap_ratio",
    "hv_min_recency_days",
    "nu_max_tenure_days",
    "nu_min_sessions_7d",
    "nu_min_product_views",
    "nps_detractor_max_score",
    "nps_recent_days",
)


@lru_cache(maxsize=1)
def segment_vars() -> dict[str, float]:
    """The segment thresholds as the dbt project defines them (its `vars`), so both agree."""
    project = yaml.safe_load((DBT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    return {k: float(project["vars"][k]) for k in _SEGMENT_VARS}


def _arrow(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> pa.Table:
    rel = con.sql(sql, params=params or None)
    return rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()


@dataclass(frozen=True, eq=False)
class CustomerTimeline:
    """The dated facts behind the customer 360 of some customers (Arrow tables, read once)."""

    static: pa.Table  # customer_id, signup_date, consent_*, preferred_channel
    orders: pa.Table  # one row per revenue order with the running count and revenue
    web: pa.Table  # one row per customer and day with web activity, running totals
    nps: pa.Table  # every NPS answer
    sample_orders: pa.Table  # the RFM sample's revenue orders, running totals
    web_start: Any  # the first day with a web event in the warehouse (None: no web events)

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection, customer_ids: Sequence[str]) -> CustomerTimeline:
        ids = [list(customer_ids)]
        sample = f"customer_id in ({_SAMPLE_SQL})"
        return cls(
            static=_arrow(con, _STATIC_SQL, ids),
            orders=_arrow(con, _ORDERS_SQL.format(who=_WHO), ids),
            web=_arrow(con, _WEB_SQL, ids),
            nps=_arrow(con, _NPS_SQL, ids),
            sample_orders=_arrow(con, _ORDERS_SQL.format(who=sample)),
            web_start=con.execute(_WEB_START_SQL).fetchall()[0][0],
        )

    def base_table(self, customer_ids: np.ndarray | pa.Array, at: np.ndarray | pa.Array) -> pa.Table:
        """The `_CUSTOMER_SQL` columns of each (customer, timestamp) pair as of the timestamp's day
        (facts dated before that day), in input order."""
        spine = pa.table(
            {
                "i": pa.array(np.arange(len(customer_ids), dtype=np.int64)),
                "customer_id": pa.array(customer_ids, pa.string())
                if not isinstance(customer_ids, pa.Array)
                else customer_ids.cast(pa.string()),
                "as_of_date": pa.array(at).cast(pa.timestamp("us")).cast(pa.date32()),
            }
        )
        known = "true" if self.web_start is None else "s.{col} >= cast('" + str(self.web_start) + "' as date)"
        sql = _AS_OF_SQL.format(
            web_known_7=known.format(col="d7"),
            web_known_30=known.format(col="d30"),
            **{k: repr(v) for k, v in segment_vars().items()},
        )
        con = duckdb.connect()
        try:
            con.execute("set threads to 2")
            for name, table in (
                ("spine_t", spine),
                ("static_t", self.static),
                ("orders_t", self.orders),
                ("web_t", self.web),
                ("nps_t", self.nps),
                ("cuts_t", rfm_cuts(self.sample_orders, spine.column("as_of_date"))),
            ):
                con.register(name, table)
            return _arrow(con, sql)
        finally:
            con.close()


def rfm_cuts(sample_orders: pa.Table, dates: pa.ChunkedArray | pa.Array) -> pa.Table:
    """Per distinct date: where ntile(5) of the sampled customers with orders puts the end of
    quintiles 1-4, as (value, customer id) in the 360's order (recency descending, frequency and
    monetary ascending, then customer id); a row past boundary k scores above k."""
    days = np.unique(np.asarray(dates.to_numpy(zero_copy_only=False), dtype="datetime64[D]"))
    ids = np.asarray(sample_orders.column("customer_id").to_numpy(zero_copy_only=False), dtype=object)
    names, code = np.unique(ids.astype(str), return_inverse=True)  # code order = customer id order
    sec = sample_orders.column("ordered_at").cast(pa.timestamp("us")).cast(pa.int64()).to_numpy() // 10**6
    order = np.lexsort((sec, code))
    code, sec = code[order], sec[order]
    count = sample_orders.column("orders_count").to_numpy()[order]
    revenue = sample_orders.column("lifetime_revenue").to_numpy()[order]
    big = np.int64(1) << 36  # above any timestamp in seconds for two thousand years
    keys = code.astype(np.int64) * big + sec
    everyone = np.arange(len(names), dtype=np.int64)
    cols: dict[str, list[Any]] = {f"{m}{k}{x}": [] for m in "rfm" for k in range(1, 5) for x in ("", "_id")}
    for d in days.astype("datetime64[s]").astype(np.int64):
        last = np.searchsorted(keys, everyone * big + d, side="left") - 1  # last order before d
        have = last >= 0
        have[have] = code[last[have]] == everyone[have]
        who, at = everyone[have], last[have]
        n = len(who)
        recency = d // 86400 - sec[at] // 86400  # day boundaries crossed, as date_diff('day')
        for m, v in (("r", -recency), ("f", count[at]), ("m", revenue[at])):
            ranked = np.lexsort((who, v))  # value, then customer id
            for k in range(1, 5):
                pos = k * (n // 5) + min(k, n % 5) - 1
                ok = n > 0 and pos >= 0
                value = v[ranked[pos]].item() if ok else None
                cols[f"{m}{k}"].append(-value if ok and m == "r" else value)  # type: ignore[operator]
                cols[f"{m}{k}_id"].append(str(names[who[ranked[pos]]]) if ok else None)
    out = {"as_of_date": pa.array(days, pa.date32())}
    return pa.table(out | {name: pa.array(values) for name, values in cols.items()})
