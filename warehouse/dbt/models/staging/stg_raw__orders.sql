with

source as (
    select * from {{ source('raw', 'orders') }}
),

renamed as (
    select
        cast(order_id as bigint) as order_id,
        cast(customer_id as string) as customer_id,
        cast(ordered_at as timestamp) as ordered_at,
        cast(status as string) as status,
        cast(order_channel as string) as order_channel,
        cast(amount as double) as amount,
        status <> 'cancelled' as is_revenue
    from source
)

select * from renamed
