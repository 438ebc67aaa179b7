"""A frozen, seeded sample of customers from the warehouse's segment scores mart."""

from __future__ import annotations

import re

import duckdb
import numpy as np

SEGMENT_SCORES = "main.mart_marketing__segment_scores"


def frozen_sample(
    con: duckdb.DuckDBPyConnection,
    n: int,
    *,
    seed: int,
    relation: str = SEGMENT_SCORES,
    segment: str | None = None,
) -> list[str]:
    """N segmented customer ids drawn without replacement with `seed`: the same warehouse and seed
    give the same ids in any process (ids are sorted before drawing, and the result is sorted)."""
    if not re.fullmatch(r"[A-Za-z_][\w.]*", relation):
        raise ValueError(f"not a relation name: {relation!r}")
    sql = f"select customer_id from {relation} where segment is not null"
    params: list[str] = []
    if segment:
        sql += " and segment = ?"
        params.append(segment)
    ids = sorted(str(r[0]) for r in con.execute(sql + " order by customer_id", params).fetchall())
    if n >= len(ids):
        return ids
    pick = np.random.default_rng(seed).choice(len(ids), size=n, replace=False)
    return sorted(ids[i] for i in pick)
