-- One row per globally suppressed customer: the earliest suppression and its reason.
with

suppressions as (
    select * from {{ ref('stg_raw__suppressions') }}
),

ranked as (
    select
        customer_id,
        reason,
        suppressed_at,
        row_number() over (partition by customer_id order by suppressed_at, reason) as suppression_rank
    from suppressions
),

first_suppression as (
    select
        customer_id,
        reason as suppression_reason,
        suppressed_at
    from ranked
    where suppression_rank = 1
)

select * from first_suppression
