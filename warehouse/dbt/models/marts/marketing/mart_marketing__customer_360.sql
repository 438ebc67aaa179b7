with

customers as (
    select * from {{ ref('dim_customer') }}
),

order_summary as (
    select * from {{ ref('int_orders_summarized_to_customers') }}
),

web_activity as (
    select * from {{ ref('int_web_events_rolled_up_to_customers') }}
),

latest_nps as (
    select * from {{ ref('int_nps_responses_ranked_to_latest') }}
),

last_contacts as (
    select * from {{ ref('int_campaign_touches_pivoted_to_customers') }}
),

as_of as (
    select {{ as_of_date() }} as as_of_date
),

joined as (
    select
        customers.customer_id,
        customers.first_name,
        customers.country,
        customers.timezone,
        customers.signup_date,
        {{ dbt.datediff('customers.signup_date', 'as_of.as_of_date', 'day') }} as tenure_days,
        coalesce(order_summary.orders_count, 0) as orders_count,
        coalesce(order_summary.lifetime_revenue, 0) as lifetime_revenue,
        coalesce(order_summary.avg_order_value, 0) as avg_order_value,
        order_summary.first_order_at,
        order_summary.last_order_at,
        {{ dbt.datediff('order_summary.last_order_at', 'as_of.as_of_date', 'day') }} as recency_days,
        order_summary.usual_gap_days,
        coalesce(web_activity.sessions_7d, 0) as sessions_7d,
        coalesce(web_activity.sessions_30d, 0) as sessions_30d,
        coalesce(web_activity.product_views_30d, 0) as product_views_30d,
        coalesce(web_activity.add_to_cart_30d, 0) as add_to_cart_30d,
        coalesce(web_activity.checkouts_30d, 0) as checkouts_30d,
        latest_nps.latest_nps_score,
        latest_nps.latest_nps_comment,
        latest_nps.latest_nps_at,
        customers.consent_email,
        customers.consent_sms,
        customers.consent_push,
        customers.preferred_channel,
        customers.is_globally_suppressed,
        last_contacts.last_contact_email_at,
        last_contacts.last_contact_sms_at,
        last_contacts.last_contact_push_at,
        as_of.as_of_date
    from customers
    cross join as_of
    left join order_summary
        on customers.customer_id = order_summary.customer_id
    left join web_activity
        on customers.customer_id = web_activity.customer_id
    left join latest_nps
        on customers.customer_id = latest_nps.customer_id
    left join last_contacts
        on customers.customer_id = last_contacts.customer_id
),

-- RFM quintiles among customers who ordered (5 = best); customers without orders score 1.
rfm_scored as (
    select
        *,
        case when orders_count > 0
            then ntile(5) over (
                partition by case when orders_count > 0 then 1 else 0 end
                order by recency_days desc, customer_id
            )
            else 1 end as rfm_recency_score,
        case when orders_count > 0
            then ntile(5) over (
                partition by case when orders_count > 0 then 1 else 0 end
                order by orders_count, customer_id
            )
            else 1 end as rfm_frequency_score,
        case when orders_count > 0
            then ntile(5) over (
                partition by case when orders_count > 0 then 1 else 0 end
                order by lifetime_revenue, customer_id
            )
            else 1 end as rfm_monetary_score
    from joined
),

final as (
    select
        cast(customer_id as string) as customer_id,
        cast(first_name as string) as first_name,
        cast(country as string) as country,
        cast(timezone as string) as timezone,
        cast(signup_date as date) as signup_date,
        cast(tenure_days as integer) as tenure_days,
        cast(orders_count as integer) as orders_count,
        cast(lifetime_revenue as double) as lifetime_revenue,
        cast(avg_order_value as double) as avg_order_value,
        cast(first_order_at as timestamp) as first_order_at,
        cast(last_order_at as timestamp) as last_order_at,
        cast(recency_days as integer) as recency_days,
        cast(usual_gap_days as double) as usual_gap_days,
        cast(
            case when usual_gap_days > 0 then recency_days / usual_gap_days end as double
        ) as gap_ratio,
        cast(rfm_recency_score as integer) as rfm_recency_score,
        cast(rfm_frequency_score as integer) as rfm_frequency_score,
        cast(rfm_monetary_score as integer) as rfm_monetary_score,
        cast(
            case
                when orders_count = 0 then 'no_orders'
                when rfm_recency_score >= 4 and rfm_frequency_score >= 4 then 'champions'
                when rfm_recency_score <= 2 and rfm_frequency_score >= 4 then 'cant_lose_them'
                when rfm_recency_score <= 2 and rfm_frequency_score >= 2 then 'at_risk'
                when rfm_recency_score <= 2 then 'hibernating'
                when rfm_frequency_score >= 3 then 'loyal'
                else 'promising'
            end as string
        ) as rfm_segment,
        cast(sessions_7d as integer) as sessions_7d,
        cast(sessions_30d as integer) as sessions_30d,
        cast(product_views_30d as integer) as product_views_30d,
        cast(add_to_cart_30d as integer) as add_to_cart_30d,
        cast(checkouts_30d as integer) as checkouts_30d,
        cast(latest_nps_score as integer) as latest_nps_score,
        cast(latest_nps_comment as string) as latest_nps_comment,
        cast(latest_nps_at as timestamp) as latest_nps_at,
        cast(consent_email as boolean) as consent_email,
        cast(consent_sms as boolean) as consent_sms,
        cast(consent_push as boolean) as consent_push,
        cast(preferred_channel as string) as preferred_channel,
        cast(is_globally_suppressed as boolean) as is_globally_suppressed,
        cast(last_contact_email_at as timestamp) as last_contact_email_at,
        cast(last_contact_sms_at as timestamp) as last_contact_sms_at,
        cast(last_contact_push_at as timestamp) as last_contact_push_at,
        cast(as_of_date as date) as as_of_date
    from rfm_scored
)

select * from final
