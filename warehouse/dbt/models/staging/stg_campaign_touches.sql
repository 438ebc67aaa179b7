with

source as (
    select * from {{ source('raw', 'campaign_touches') }}
),

renamed as (
    select
        cast(touch_id as varchar) as touch_id,
        cast(customer_id as varchar) as customer_id,
        cast(campaign_id as varchar) as campaign_id,
        cast(touched_at as timestamp) as touched_at,
        cast(template_id as varchar) as template_id,
        cast(channel as varchar) as channel,
        cast(discount_pct as double) as discount_pct,
        cast(propensity as double) as propensity,
        cast(converted_14d as boolean) as converted_14d,
        cast(revenue_90d as double) as revenue_90d
    from source
)

select * from renamed
