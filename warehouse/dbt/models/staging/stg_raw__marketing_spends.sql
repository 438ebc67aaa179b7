with

source as (
    select * from {{ source('raw', 'marketing_spend') }}
),

renamed as (
    select
        cast(spend_date as date) as spend_date,
        cast(campaign_id as string) as campaign_id,
        cast(spend as double) as spend,
        cast(impressions as bigint) as impressions,
        cast(clicks as bigint) as clicks
    from source
)

select * from renamed
