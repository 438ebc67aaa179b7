with

source as (
    select * from {{ source('ops', 'decision_log') }}
),

renamed as (
    select
        cast(decision_id as string) as decision_id,
        cast(run_id as string) as run_id,
        cast(as_of as timestamp) as as_of,
        cast(customer_id as string) as customer_id,
        cast(segment as string) as segment,
        cast(goal as string) as goal,
        cast(arm as string) as arm,
        cast(status as string) as status,
        cast(channel as string) as channel,
        cast(template_id as string) as template_id,
        cast(discount_pct as double) as discount_pct,
        cast(policy as string) as policy,
        cast(propensity as double) as propensity,
        cast(dry_run as boolean) as is_dry_run
    from source
)

select * from renamed
