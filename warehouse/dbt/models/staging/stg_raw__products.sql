with

source as (
    select * from {{ source('raw', 'products') }}
),

renamed as (
    select
        cast(product_id as string) as product_id,
        cast(product_name as string) as product_name,
        cast(category as string) as category,
        cast(list_price as double) as list_price
    from source
)

select * from renamed
