"""The warehouse state a plan depends on, as a fingerprint `apply` compares before it sends.

A plan's decisions are a function of the marts (customer 360, segment scores), the contact ledger
(suppression window, frequency caps), the delivery state (what is owed, held, already delivered)
and the reference data (action bank, templates, channel limits, ban list). The fingerprint holds,
for each, what a refusal can quote: row counts, content hashes, high-water marks. Dry runs write
only the decision log, the run log and attempt-0 delivery log rows, none of which is an input here,
so other plans do not invalidate a plan; a live run, a replay or a rebuild with new data does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import duckdb

from core.reference import SEEDS_DIR

MARTS = ("mart_marketing__customer_360", "mart_marketing__segment_scores")
SEED_FILES = ("action_bank", "message_templates", "channel_limits", "banned_terms")


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    row = con.execute(sql).fetchone()
    return tuple(row) if row else ()


def warehouse_fingerprint(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """What a plan's decisions depend on, in words a refusal can quote: the marts' row counts and
    content hashes (a rebuild of the same data keeps them), the data's as-of, the contact ledger's
    and the delivery state's high-water marks, and the reference data (dbt seeds) hash."""
    out: dict[str, str] = {}
    for table in MARTS:
        n, h = _one(con, f"select count(*), coalesce(sum(hash(t)), 0)::varchar from main.{table} t")
        out[table] = f"{n} rows, content {int(h) % 16**12:012x}"
    (day,) = _one(con, "select max(as_of_date) from main.mart_marketing__segment_scores")
    out["data_as_of"] = str(day)
    n, latest = _one(con, "select count(*), max(contacted_at) from ops.contact_ledger")
    out["contact_ledger"] = f"{n} rows, latest contact {latest or 'none'}"
    n, latest = _one(con, "select count(*), max(updated_at) from ops.delivery_state")
    by = con.execute(
        "select status, count(*) from ops.delivery_state group by status order by status"
    ).fetchall()
    status = ", ".join(f"{k} {v}" for k, v in by) or "empty"
    out["delivery_state"] = f"{n} rows ({status}), last change {latest or 'none'}"
    digest = hashlib.sha256()
    for name in SEED_FILES:
        digest.update((SEEDS_DIR / f"{name}.csv").read_bytes())
    out["reference_data"] = digest.hexdigest()[:12]
    return out


def fingerprint_changes(planned: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    """'contact ledger: 0 rows ... -> 855 rows ...' for every input that changed."""
    return [
        f"{key.replace('_', ' ')}: {planned.get(key)} -> {now.get(key)}"
        for key in sorted(set(planned) | set(now))
        if planned.get(key) != now.get(key)
    ]
