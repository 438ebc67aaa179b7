-- One row per customer with at least one revenue order: counts, revenue and the usual gap.
with

orders as (
    select * from {{ ref('stg_raw__orders') }}
),

revenue_orders as (
    select
        customer_id,
        ordered_at,
        amount
    from orders
    where is_revenue
),

summarized as (
    select
        customer_id,
        count(*) as orders_count,
        sum(amount) as lifetime_revenue,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at
    from revenue_orders
    group by customer_id
),

with_gap as (
    select
        customer_id,
        orders_count,
        lifetime_revenue,
        lifetime_revenue / orders_count as avg_order_value,
        first_order_at,
        last_order_at,
        case
            when orders_count >= 2
                -- double before dividing: Spark would divide a bigint by a decimal in decimal
                -- arithmetic and round differently from DuckDB's double (engine parity of scores)
                then cast({{ dbt.datediff('first_order_at', 'last_order_at', 'second') }} as double)
                    / 86400.0 / (orders_count - 1)
        end as usual_gap_days
    from summarized
)

select * from with_gap
