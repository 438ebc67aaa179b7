with

customers as (
    select * from {{ ref('stg_raw__customers') }}
),

orders as (
    select * from {{ ref('stg_raw__orders') }}
),

cohorts as (
    select
        customer_id,
        {{ dbt.date_trunc('month', 'signup_date') }} as cohort_month
    from customers
),

cohort_sizes as (
    select
        cohort_month,
        count(*) as cohort_customers
    from cohorts
    group by cohort_month
),

active_months as (
    select distinct
        cohorts.cohort_month,
        orders.customer_id,
        {{ dbt.datediff('cohorts.cohort_month', dbt.date_trunc('month', 'orders.ordered_at'), 'month') }}
            as months_since_signup
    from orders
    inner join cohorts
        on orders.customer_id = cohorts.customer_id
    where orders.is_revenue
),

retained as (
    select
        cohort_month,
        months_since_signup,
        count(*) as retained_customers
    from active_months
    group by cohort_month, months_since_signup
),

final as (
    select
        cast(retained.cohort_month as date) as cohort_month,
        cast(retained.months_since_signup as integer) as months_since_signup,
        cast(cohort_sizes.cohort_customers as integer) as cohort_customers,
        cast(retained.retained_customers as integer) as retained_customers,
        cast(retained.retained_customers as double) / cohort_sizes.cohort_customers as retention_rate
    from retained
    inner join cohort_sizes
        on retained.cohort_month = cohort_sizes.cohort_month
)

select * from final
