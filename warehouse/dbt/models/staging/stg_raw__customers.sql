with

source as (
    select * from {{ source('raw', 'customers') }}
),

renamed as (
    select
        cast(customer_id as string) as customer_id,
        cast(first_name as string) as first_name,
        cast(last_name as string) as last_name,
        lower(cast(email as string)) as email,
        cast(phone as string) as phone,
        cast(address as string) as address,
        cast(city as string) as city,
        upper(cast(country as string)) as country,
        cast(timezone as string) as timezone,
        cast(signup_date as date) as signup_date,
        cast(acquisition_channel as string) as acquisition_channel,
        cast(consent_email as boolean) as consent_email,
        cast(consent_sms as boolean) as consent_sms,
        cast(consent_push as boolean) as consent_push,
        cast(preferred_channel as string) as preferred_channel
    from source
)

select * from renamed
