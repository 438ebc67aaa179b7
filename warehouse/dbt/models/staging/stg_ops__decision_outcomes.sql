with

source as (
    select * from {{ source('ops', 'decision_outcomes') }}
),

renamed as (
    select
        cast(decision_id as string) as decision_id,
        cast(customer_id as string) as customer_id,
        cast(converted_14d as boolean) as converted_14d,
        cast(revenue_90d as double) as revenue_90d,
        cast(observed_at as timestamp) as observed_at
    from source
)

select * from renamed
