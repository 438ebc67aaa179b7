with

source as (
    select * from {{ source('ops', 'decision_log') }}
),

renamed as (
    select
        cast(decision_id as varchar) as decision_id,
        cast(run_id as varchar) as run_id,
        cast(as_of as timestamp) as as_of,
        cast(customer_id as varchar) as customer_id,
        cast(segment as varchar) as segment,
        cast(goal as varchar) as goal,
        cast(arm as varchar) as arm,
        cast(status as varchar) as status,
        cast(channel as varchar) as channel,
        cast(template_id as varchar) as template_id,
        cast(discount_pct as double) as discount_pct,
        cast(policy as varchar) as policy,
        cast(propensity as double) as propensity,
        cast(dry_run as boolean) as is_dry_run
    from source
)

select * from renamed
