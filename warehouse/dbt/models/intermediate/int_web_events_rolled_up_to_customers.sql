-- One row per customer with web activity: sessions and funnel events in the last 7 / 30 days before as_of.
with

events as (
    select * from {{ ref('stg_raw__web_events') }}
),

as_of as (
    select {{ as_of_date() }} as as_of_date
),

recent as (
    select
        events.customer_id,
        events.session_id,
        events.event_type,
        {{ dbt.datediff('events.event_at', 'as_of.as_of_date', 'day') }} as days_ago
    from events
    cross join as_of
    where events.event_at >= {{ dbt.dateadd('day', -30, 'as_of.as_of_date') }}
),

rolled_up as (
    select
        customer_id,
        count(distinct case when event_type = 'session_start' and days_ago <= 7 then session_id end) as sessions_7d,
        count(distinct case when event_type = 'session_start' then session_id end) as sessions_30d,
        sum(case when event_type = 'product_view' then 1 else 0 end) as product_views_30d,
        sum(case when event_type = 'add_to_cart' then 1 else 0 end) as add_to_cart_30d,
        sum(case when event_type = 'checkout' then 1 else 0 end) as checkouts_30d
    from recent
    group by customer_id
)

select * from rolled_up
