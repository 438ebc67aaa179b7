with

source as (
    select * from {{ source('raw', 'generator_meta') }}
),

renamed as (
    select
        cast(seed as bigint) as seed,
        cast(customers as bigint) as customers,
        cast(as_of_date as date) as as_of_date
    from source
)

select * from renamed
