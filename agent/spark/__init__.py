"""The decision step on a Spark cluster: the run's one Pipeline, per partition of the Spark marts.

`decisions.SparkDecisionStep` is what `activate` opens when NBA_DECIDE_ON=spark; `source` reads the
customer contexts from the marts the `spark` dbt target builds. Both need the `spark` extra."""
