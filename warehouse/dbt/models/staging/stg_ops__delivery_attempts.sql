with

source as (
    select * from {{ source('ops', 'delivery_log') }}
),

renamed as (
    select
        cast(run_id as varchar) as run_id,
        cast(decision_id as varchar) as decision_id,
        cast(customer_id as varchar) as customer_id,
        cast(destination as varchar) as destination,
        cast(idempotency_key as varchar) as idempotency_key,
        cast(attempt as integer) as attempt,
        cast(status as varchar) as status,
        cast(error as varchar) as error,
        cast({{ adapter.quote('at') }} as timestamp) as attempted_at
    from source
)

select * from renamed
