with

decisions as (
    select * from {{ ref('stg_ops__decisions') }}
),

latest_decisions as (
    select * from {{ ref('int_decisions_ranked_to_latest') }}
),

delivery_attempts as (
    select * from {{ ref('stg_ops__delivery_attempts') }}
),

contacts as (
    select * from {{ ref('stg_ops__contacts') }}
),

-- What was attempted and what was contacted, each with the run and decision it belongs to.
touches as (
    select
        'attempt' as kind,
        attempted_at as touched_at,
        run_id,
        decision_id,
        destination,
        status,
        cast(null as string) as contact_channel
    from delivery_attempts
    union all
    select
        'contact' as kind,
        contacted_at as touched_at,
        run_id,
        decision_id,
        destination,
        cast(null as string) as status,
        channel as contact_channel
    from contacts
),

-- A decision id recurs across runs: rows join their own run's decision ((run_id, decision_id) is
-- the key), and fall back to the id's latest run for rows written by a dead-letter replay.
touches_with_decision as (
    select
        touches.*,
        coalesce(decisions.segment, latest_decisions.segment, 'unknown') as segment,
        coalesce(decisions.channel, latest_decisions.channel, 'unknown') as decision_channel,
        coalesce(decisions.is_dry_run, false) as decision_is_dry_run
    from touches
    left join decisions
        on touches.run_id = decisions.run_id
        and touches.decision_id = decisions.decision_id
    left join latest_decisions
        on touches.decision_id = latest_decisions.decision_id
),

delivery_facts as (
    select
        cast(touched_at as date) as activity_date,
        segment,
        decision_channel as channel,
        destination,
        decision_is_dry_run as is_dry_run,
        case when status in ('delivered', 'dry_run') then 1 else 0 end as sends,
        case when status in ('failed', 'dead_letter') then 1 else 0 end as failures,
        0 as suppressions,
        0 as contacts
    from touches_with_decision
    where kind = 'attempt'
),

suppression_facts as (
    select
        cast(as_of as date) as activity_date,
        segment,
        coalesce(channel, 'none') as channel,
        'none' as destination,
        is_dry_run,
        0 as sends,
        0 as failures,
        1 as suppressions,
        0 as contacts
    from decisions
    where status in ('suppressed', 'deferred')
),

contact_facts as (
    select
        cast(touched_at as date) as activity_date,
        segment,
        contact_channel as channel,
        destination,
        false as is_dry_run,
        0 as sends,
        0 as failures,
        0 as suppressions,
        1 as contacts
    from touches_with_decision
    where kind = 'contact'
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
        cast(is_dry_run as boolean) as is_dry_run,
        cast(sum(sends) as integer) as sends,
        cast(sum(failures) as integer) as failures,
        cast(sum(suppressions) as integer) as suppressions,
        cast(sum(contacts) as integer) as contacts
    from unioned
    group by activity_date, segment, channel, destination, is_dry_run
)

select * from final
