with

source as (
    select * from {{ source('raw', 'suppression_list') }}
),

renamed as (
    select
        cast(customer_id as varchar) as customer_id,
        lower(cast(email as varchar)) as email,
        cast(reason as varchar) as reason,
        cast(suppressed_at as timestamp) as suppressed_at
    from source
)

select * from renamed
