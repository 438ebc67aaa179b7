with

source as (
    select * from {{ source('raw', 'nps_responses') }}
),

renamed as (
    select
        cast(response_id as bigint) as response_id,
        cast(customer_id as string) as customer_id,
        cast(responded_at as timestamp) as responded_at,
        cast(score as integer) as score,
        cast(comment as string) as comment,
        case
            when score <= 6 then 'detractor'
            when score <= 8 then 'passive'
            else 'promoter'
        end as nps_category
    from source
)

select * from renamed
