with

source as (
    select * from {{ source('raw', 'campaign_touches') }}
),

renamed as (
    select
        cast(touch_id as string) as touch_id,
        cast(customer_id as string) as customer_id,
        cast(campaign_id as string) as campaign_id,
        cast(touched_at as timestamp) as touched_at,
        cast(template_id as string) as template_id,
        cast(channel as string) as channel,
        cast(discount_pct as double) as discount_pct,
        cast(propensity as double) as propensity,
        cast(converted_14d as boolean) as converted_14d,
        cast(revenue_90d as double) as revenue_90d
    from source
)

select * from renamed
