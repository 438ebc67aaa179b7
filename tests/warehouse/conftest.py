"""Warehouse tests use the suite-wide fixtures of tests/conftest.py: `demo_warehouse` (the demo
warehouse built by dbt once per session) and `demo_warehouse_env` (NBA_* paths pointing at it)."""
