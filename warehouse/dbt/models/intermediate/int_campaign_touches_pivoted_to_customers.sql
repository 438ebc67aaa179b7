-- One row per touched customer: the last marketing contact per channel.
with

touches as (
    select * from {{ ref('stg_raw__campaign_touches') }}
),

pivoted as (
    select
        customer_id,
        max(case when channel = 'email' then touched_at end) as last_contact_email_at,
        max(case when channel = 'sms' then touched_at end) as last_contact_sms_at,
        max(case when channel = 'push' then touched_at end) as last_contact_push_at,
        count(*) as touches_count
    from touches
    group by customer_id
)

select * from pivoted
