-- One row per customer who answered an NPS survey: the latest response.
with

responses as (
    select * from {{ ref('stg_raw__nps_responses') }}
),

ranked as (
    select
        customer_id,
        response_id,
        responded_at,
        score,
        comment,
        row_number() over (partition by customer_id order by responded_at desc, response_id desc) as recency_rank
    from responses
),

latest as (
    select
        customer_id,
        response_id,
        responded_at as latest_nps_at,
        score as latest_nps_score,
        comment as latest_nps_comment
    from ranked
    where recency_rank = 1
)

select * from latest
