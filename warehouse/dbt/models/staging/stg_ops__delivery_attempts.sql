with

source as (
    select * from {{ source('ops', 'delivery_log') }}
),

renamed as (
    select
        cast(run_id as string) as run_id,
        cast(decision_id as string) as decision_id,
        cast(customer_id as string) as customer_id,
        cast(destination as string) as destination,
        cast(idempotency_key as string) as idempotency_key,
        cast(attempt as integer) as attempt,
        cast(status as string) as status,
        cast(error as string) as error,
        cast({{ adapter.quote('at') }} as timestamp) as attempted_at
    from source
)

select * from renamed
