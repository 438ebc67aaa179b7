with

-- one row per decision id (its latest run): an outcome counts once even when its decision id
-- recurs across the runs of a day
decisions as (
    select * from {{ ref('int_decisions_ranked_to_latest') }}
),

outcomes as (
    select * from {{ ref('stg_ops__decision_outcomes') }}
),

assigned as (
    select
        decisions.segment,
        decisions.arm,
        decisions.customer_id,
        case when outcomes.converted_14d then 1.0 else 0.0 end as converted,
        coalesce(outcomes.revenue_90d, 0.0) as revenue_90d
    from decisions
    inner join outcomes
        on decisions.decision_id = outcomes.decision_id
    where decisions.arm in ('treatment', 'holdout')
),

per_arm as (
    select
        segment,
        sum(case when arm = 'treatment' then 1 else 0 end) as treatment_customers,
        sum(case when arm = 'holdout' then 1 else 0 end) as holdout_customers,
        sum(case when arm = 'treatment' then converted else 0 end) as treatment_conversions,
        sum(case when arm = 'holdout' then converted else 0 end) as holdout_conversions,
        sum(case when arm = 'treatment' then revenue_90d else 0 end) as treatment_revenue,
        sum(case when arm = 'holdout' then revenue_90d else 0 end) as holdout_revenue
    from assigned
    group by segment
),

rates as (
    select
        segment,
        treatment_customers,
        holdout_customers,
        case when treatment_customers > 0 then treatment_conversions / treatment_customers end
            as treatment_conversion_rate,
        case when holdout_customers > 0 then holdout_conversions / holdout_customers end
            as holdout_conversion_rate,
        case when treatment_customers > 0 then treatment_revenue / treatment_customers end
            as treatment_revenue_per_customer,
        case when holdout_customers > 0 then holdout_revenue / holdout_customers end
            as holdout_revenue_per_customer
    from per_arm
),

final as (
    select
        cast(segment as string) as segment,
        cast(treatment_customers as integer) as treatment_customers,
        cast(holdout_customers as integer) as holdout_customers,
        cast(treatment_conversion_rate as double) as treatment_conversion_rate,
        cast(holdout_conversion_rate as double) as holdout_conversion_rate,
        cast(treatment_conversion_rate - holdout_conversion_rate as double) as conversion_lift,
        cast(treatment_revenue_per_customer as double) as treatment_revenue_per_customer,
        cast(holdout_revenue_per_customer as double) as holdout_revenue_per_customer,
        cast(treatment_revenue_per_customer - holdout_revenue_per_customer as double)
            as revenue_per_customer_lift
    from rates
)

select * from final
