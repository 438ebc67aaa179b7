with

source as (
    select * from {{ source('raw', 'customers') }}
),

renamed as (
    select
        cast(customer_id as varchar) as customer_id,
        cast(first_name as varchar) as first_name,
        cast(last_name as varchar) as last_name,
        lower(cast(email as varchar)) as email,
        cast(phone as varchar) as phone,
        cast(address as varchar) as address,
        cast(city as varchar) as city,
        upper(cast(country as varchar)) as country,
        cast(timezone as varchar) as timezone,
        cast(signup_date as date) as signup_date,
        cast(acquisition_channel as varchar) as acquisition_channel,
        cast(consent_email as boolean) as consent_email,
        cast(consent_sms as boolean) as consent_sms,
        cast(consent_push as boolean) as consent_push,
        cast(preferred_channel as varchar) as preferred_channel
    from source
)

select * from renamed
