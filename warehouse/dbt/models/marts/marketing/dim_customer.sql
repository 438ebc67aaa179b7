with

customers as (
    select * from {{ ref('stg_raw__customers') }}
),

suppressed as (
    select * from {{ ref('int_customers_suppressed') }}
),

joined as (
    select
        cast(customers.customer_id as string) as customer_id,
        cast(customers.first_name as string) as first_name,
        cast(customers.last_name as string) as last_name,
        cast(customers.email as string) as email,
        cast(customers.phone as string) as phone,
        cast(customers.address as string) as address,
        cast(customers.city as string) as city,
        cast(customers.country as string) as country,
        cast(customers.timezone as string) as timezone,
        cast(customers.signup_date as date) as signup_date,
        cast(customers.acquisition_channel as string) as acquisition_channel,
        cast(customers.consent_email as boolean) as consent_email,
        cast(customers.consent_sms as boolean) as consent_sms,
        cast(customers.consent_push as boolean) as consent_push,
        cast(customers.preferred_channel as string) as preferred_channel,
        cast(suppressed.customer_id is not null as boolean) as is_globally_suppressed,
        cast(suppressed.suppression_reason as string) as suppression_reason,
        cast(suppressed.suppressed_at as timestamp) as suppressed_at
    from customers
    left join suppressed
        on customers.customer_id = suppressed.customer_id
)

select * from joined
