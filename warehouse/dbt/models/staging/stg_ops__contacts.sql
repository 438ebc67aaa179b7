with

source as (
    select * from {{ source('ops', 'contact_ledger') }}
),

renamed as (
    select
        cast(customer_id as varchar) as customer_id,
        cast(channel as varchar) as channel,
        cast(destination as varchar) as destination,
        cast(contacted_at as timestamp) as contacted_at,
        cast(decision_id as varchar) as decision_id,
        cast(run_id as varchar) as run_id
    from source
)

select * from renamed
