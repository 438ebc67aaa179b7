-- One row per decision id: its latest logged run. A decision id recurs across the runs of a day (a
-- dry run, the live run, reruns); attributes looked up by decision id alone (outcomes, replays of
-- dead letters) come from the latest run, so a lookup never multiplies rows.
with

decisions as (
    select * from {{ ref('stg_ops__decisions') }}
),

ranked as (
    select
        *,
        row_number() over (partition by decision_id order by as_of desc, run_id desc) as recency_rank
    from decisions
),

latest as (
    select
        decision_id,
        run_id,
        as_of,
        customer_id,
        segment,
        arm,
        status,
        channel,
        template_id,
        discount_pct,
        policy,
        is_dry_run
    from ranked
    where recency_rank = 1
)

select * from latest
