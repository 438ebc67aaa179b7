with

source as (
    select * from {{ source('raw', 'suppression_list') }}
),

renamed as (
    select
        cast(customer_id as string) as customer_id,
        lower(cast(email as string)) as email,
        cast(reason as string) as reason,
        cast(suppressed_at as timestamp) as suppressed_at
    from source
)

select * from renamed
