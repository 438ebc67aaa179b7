with

campaign_history as (
    select * from {{ ref('mart_marketing__campaign_history') }}
),

grouped as (
    select
        coalesce(segment, 'unsegmented') as segment,
        template_id,
        discount_pct,
        count(*) as sends,
        sum(case when converted_14d then 1 else 0 end) as conversions,
        sum(revenue_90d) as revenue_90d
    from campaign_history
    group by coalesce(segment, 'unsegmented'), template_id, discount_pct
),

final as (
    select
        cast(segment as string) as segment,
        cast(template_id as string) as template_id,
        cast(discount_pct as double) as discount_pct,
        cast(sends as integer) as sends,
        cast(conversions as integer) as conversions,
        cast(conversions as double) / sends as conversion_rate,
        cast(revenue_90d as double) as revenue_90d,
        cast(revenue_90d as double) / sends as revenue_per_send
    from grouped
)

select * from final
