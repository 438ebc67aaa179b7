with

decisions as (
    select * from {{ ref('stg_ops__decisions') }}
),

delivery_attempts as (
    select * from {{ ref('stg_ops__delivery_attempts') }}
),

contacts as (
    select * from {{ ref('stg_ops__contacts') }}
),

delivery_facts as (
    select
        cast(delivery_attempts.attempted_at as date) as activity_date,
        coalesce(decisions.segment, 'unknown') as segment,
        coalesce(decisions.channel, 'unknown') as channel,
        delivery_attempts.destination,
        case when delivery_attempts.status in ('delivered', 'dry_run') then 1 else 0 end as sends,
        case when delivery_attempts.status in ('failed', 'dead_letter') then 1 else 0 end as failures,
        0 as suppressions,
        0 as contacts
    from delivery_attempts
    left join decisions
        on delivery_attempts.decision_id = decisions.decision_id
),

suppression_facts as (
    select
        cast(as_of as date) as activity_date,
        segment,
        coalesce(channel, 'none') as channel,
        'none' as destination,
        0 as sends,
        0 as failures,
        1 as suppressions,
        0 as contacts
    from decisions
    where status in ('suppressed', 'deferred')
),

contact_facts as (
    select
        cast(contacts.contacted_at as date) as activity_date,
        coalesce(decisions.segment, 'unknown') as segment,
        contacts.channel,
        contacts.destination,
        0 as sends,
        0 as failures,
        0 as suppressions,
        1 as contacts
    from contacts
    left join decisions
        on contacts.decision_id = decisions.decision_id
),

unioned as (
    select * from delivery_facts
    union all
    select * from suppression_facts
    union all
    select * from contact_facts
),

final as (
    select
        cast(activity_date as date) as activity_date,
        cast(segment as string) as segment,
        cast(channel as string) as channel,
        cast(destination as string) as destination,
        cast(sum(sends) as integer) as sends,
        cast(sum(failures) as integer) as failures,
        cast(sum(suppressions) as integer) as suppressions,
        cast(sum(contacts) as integer) as contacts
    from unioned
    group by activity_date, segment, channel, destination
)

select * from final
