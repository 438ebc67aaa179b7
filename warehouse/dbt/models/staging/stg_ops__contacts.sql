with

source as (
    select * from {{ source('ops', 'contact_ledger') }}
),

renamed as (
    select
        cast(customer_id as string) as customer_id,
        cast(channel as string) as channel,
        cast(destination as string) as destination,
        cast(contacted_at as timestamp) as contacted_at,
        cast(decision_id as string) as decision_id,
        cast(run_id as string) as run_id
    from source
)

select * from renamed
