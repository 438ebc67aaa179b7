with

source as (
    select * from {{ source('raw', 'web_events') }}
),

renamed as (
    select
        cast(event_id as bigint) as event_id,
        cast(customer_id as string) as customer_id,
        cast(session_id as bigint) as session_id,
        cast(event_type as string) as event_type,
        cast(event_at as timestamp) as event_at,
        cast(product_id as string) as product_id
    from source
)

select * from renamed
