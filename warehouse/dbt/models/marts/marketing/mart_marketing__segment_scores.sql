{#
  Segment rules (thresholds are vars in dbt_project.yml). Priority when several apply:
  churn_rescue_nps > high_value_lapse_risk > new_users_first_week_intent.
#}
with

customer_360 as (
    select * from {{ ref('mart_marketing__customer_360') }}
),

flagged as (
    select
        customer_id,
        as_of_date,
        lifetime_revenue,
        recency_days,
        usual_gap_days,
        gap_ratio,
        rfm_monetary_score,
        tenure_days,
        orders_count,
        sessions_7d,
        product_views_30d,
        add_to_cart_30d,
        latest_nps_score,
        {{ dbt.datediff('latest_nps_at', 'as_of_date', 'day') }} as nps_days_ago,
        (
            rfm_monetary_score >= {{ var('hv_min_monetary_score') }}
            or lifetime_revenue >= {{ var('hv_min_lifetime_revenue') }}
        ) as is_high_value,
        coalesce(
            gap_ratio >= {{ var('hv_min_gap_ratio') }}
            and recency_days >= {{ var('hv_min_recency_days') }},
            false
        ) as is_lapsing,
        (
            tenure_days <= {{ var('nu_max_tenure_days') }}
            and orders_count = 0
            and (
                sessions_7d >= {{ var('nu_min_sessions_7d') }}
                or product_views_30d >= {{ var('nu_min_product_views') }}
            )
        ) as is_new_with_intent
    from customer_360
),

rules as (
    select
        *,
        is_high_value and is_lapsing as in_high_value_lapse_risk,
        is_new_with_intent as in_new_users_first_week_intent,
        coalesce(
            latest_nps_score <= {{ var('nps_detractor_max_score') }}
            and nps_days_ago <= {{ var('nps_recent_days') }},
            false
        ) as in_churn_rescue_nps
    from flagged
),

scored as (
    select
        *,
        -- value (monetary quintile) x lapse (gap ratio, saturating at twice the threshold)
        case
            when gap_ratio is null then 0.0
            else (rfm_monetary_score / 5.0)
                * least(gap_ratio / (2.0 * {{ var('hv_min_gap_ratio') }}), 1.0)
        end as score_high_value_lapse_risk,
        -- engagement of a brand-new customer without an order
        case
            when tenure_days <= {{ var('nu_max_tenure_days') }} and orders_count = 0
                then least((sessions_7d + 0.5 * product_views_30d + 2.0 * add_to_cart_30d) / 10.0, 1.0)
            else 0.0
        end as score_new_users_first_week_intent,
        -- how unhappy the latest recent NPS answer was
        case
            when nps_days_ago <= {{ var('nps_recent_days') }}
                then (10 - latest_nps_score) / 10.0
            else 0.0
        end as score_churn_rescue_nps
    from rules
),

assigned as (
    select
        *,
        case
            when in_churn_rescue_nps then 'churn_rescue_nps'
            when in_high_value_lapse_risk then 'high_value_lapse_risk'
            when in_new_users_first_week_intent then 'new_users_first_week_intent'
        end as segment
    from scored
),

explained as (
    select
        *,
        case segment
            when 'churn_rescue_nps' then
                'NPS ' || cast(latest_nps_score as string) || ' (detractor) given '
                || cast(nps_days_ago as string) || ' days ago'
            when 'high_value_lapse_risk' then
                'lifetime revenue ' || cast(cast(round(lifetime_revenue, 0) as bigint) as string)
                || ' (monetary quintile ' || cast(rfm_monetary_score as string) || ' of 5); '
                || cast(recency_days as string) || ' days since last order vs usual '
                || cast(cast(round(usual_gap_days, 0) as bigint) as string) || ' ('
                || cast(round(gap_ratio, 1) as string) || 'x)'
            when 'new_users_first_week_intent' then
                'signed up ' || cast(tenure_days as string) || ' days ago, no order yet; '
                || cast(sessions_7d as string) || ' sessions in 7 days, '
                || cast(product_views_30d as string) || ' product views, '
                || cast(add_to_cart_30d as string) || ' add-to-carts'
        end as segment_reason
    from assigned
),

final as (
    select
        cast(customer_id as string) as customer_id,
        cast(score_high_value_lapse_risk as double) as score_high_value_lapse_risk,
        cast(score_new_users_first_week_intent as double) as score_new_users_first_week_intent,
        cast(score_churn_rescue_nps as double) as score_churn_rescue_nps,
        cast(segment as string) as segment,
        cast(segment_reason as string) as segment_reason,
        cast(as_of_date as date) as as_of_date
    from explained
)

select * from final
