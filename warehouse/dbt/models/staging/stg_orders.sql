with

source as (
    select * from {{ source('raw', 'orders') }}
),

renamed as (
    select
        cast(order_id as bigint) as order_id,
        cast(customer_id as varchar) as customer_id,
        cast(ordered_at as timestamp) as ordered_at,
        cast(status as varchar) as status,
        cast(order_channel as varchar) as order_channel,
        cast(amount as double) as amount,
        status <> 'cancelled' as is_revenue
    from source
)

select * from renamed
