with

touches as (
    select * from {{ ref('stg_raw__campaign_touches') }}
),

segment_scores as (
    select * from {{ ref('mart_marketing__segment_scores') }}
),

joined as (
    select
        cast(touches.touch_id as string) as touch_id,
        cast(touches.customer_id as string) as customer_id,
        cast(touches.touched_at as timestamp) as touched_at,
        cast(touches.template_id as string) as template_id,
        cast(touches.channel as string) as channel,
        cast(touches.discount_pct as double) as discount_pct,
        cast(touches.propensity as double) as propensity,
        cast(touches.converted_14d as boolean) as converted_14d,
        cast(touches.revenue_90d as double) as revenue_90d,
        cast(segment_scores.segment as string) as segment
    from touches
    left join segment_scores
        on touches.customer_id = segment_scores.customer_id
)

select * from joined
