with

customers as (
    select * from {{ ref('stg_customers') }}
),

suppressed as (
    select * from {{ ref('int_customers_suppressed') }}
),

joined as (
    select
        customers.customer_id,
        customers.first_name,
        customers.last_name,
        customers.email,
        customers.phone,
        customers.address,
        customers.city,
        customers.country,
        customers.timezone,
        customers.signup_date,
        customers.acquisition_channel,
        customers.consent_email,
        customers.consent_sms,
        customers.consent_push,
        customers.preferred_channel,
        suppressed.customer_id is not null as is_globally_suppressed,
        suppressed.suppression_reason,
        suppressed.suppressed_at
    from customers
    left join suppressed
        on customers.customer_id = suppressed.customer_id
)

select * from joined
