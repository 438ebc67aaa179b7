with

source as (
    select * from {{ source('raw', 'order_items') }}
),

renamed as (
    select
        cast(order_item_id as bigint) as order_item_id,
        cast(order_id as bigint) as order_id,
        cast(product_id as string) as product_id,
        cast(quantity as integer) as quantity,
        cast(unit_price as double) as unit_price,
        cast(line_amount as double) as line_amount
    from source
)

select * from renamed
