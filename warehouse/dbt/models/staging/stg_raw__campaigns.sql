with

source as (
    select * from {{ source('raw', 'campaigns') }}
),

renamed as (
    select
        cast(campaign_id as string) as campaign_id,
        cast(campaign_name as string) as campaign_name,
        cast(channel as string) as channel,
        cast(objective as string) as objective,
        cast(start_date as date) as start_date,
        cast(end_date as date) as end_date
    from source
)

select * from renamed
