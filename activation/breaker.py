"""Circuit breaker on send volume: a live run whose number of send decisions deviates more than
`max_deviation_pct` from the median of recent live runs is blocked unless forced.

History: per live run that reached delivery (it has ops.delivery_log rows other than `dry_run`;
replays, whose run ids start with `replay-`, are left out), its own `send` decisions from
ops.decision_log, the most recent `window` runs. Runs that decided no send (a rerun that only re-sent
what earlier runs owed) are not history. With fewer than `min_history` runs there is nothing to
compare with and the run passes; a run with no send decision passes too (it sends nothing new, only
the rows earlier runs owe, which were checked when they were decided).
"""

from __future__ import annotations

import statistics

import duckdb
from pydantic import BaseModel, ConfigDict

from activation.errors import CircuitBreakerOpen


class VolumeCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")
    planned: int
    history: list[int]
    median: float | None
    deviation_pct: float | None
    blocked: bool
    forced: bool = False


def recent_send_counts(con: duckdb.DuckDBPyConnection, window: int = 10) -> list[int]:
    rows = con.execute(
        """
        select d.run_id, count(*) as n, max(l.last_at) as last_at
        from ops.decision_log d
        join (select run_id, max("at") as last_at from ops.delivery_log
              where status <> 'dry_run' and run_id not like 'replay-%' group by run_id) l on l.run_id = d.run_id
        where d.status = 'send' and not d.dry_run
        group by d.run_id order by last_at desc limit ?
        """,
        [window],
    ).fetchall()
    return [int(r[1]) for r in rows]


def check_send_volume(
    con: duckdb.DuckDBPyConnection,
    planned_sends: int,
    *,
    max_deviation_pct: float,
    min_history: int = 3,
    force: bool = False,
    window: int = 10,
) -> VolumeCheck:
    history = recent_send_counts(con, window)
    if len(history) < min_history or planned_sends == 0:
        return VolumeCheck(
            planned=planned_sends, history=history, median=None, deviation_pct=None, blocked=False
        )
    median = float(statistics.median(history))
    if median == 0:
        deviation = 0.0 if planned_sends == 0 else float("inf")
    else:
        deviation = abs(planned_sends - median) / median * 100
    blocked = deviation > max_deviation_pct
    check = VolumeCheck(
        planned=planned_sends,
        history=history,
        median=median,
        deviation_pct=deviation,
        blocked=blocked,
        forced=force,
    )
    if blocked and not force:
        raise CircuitBreakerOpen(
            f"circuit breaker: {planned_sends} planned sends deviate {deviation:.0f}% from the median "
            f"{median:g} of the last {len(history)} runs (limit {max_deviation_pct:g}%); "
            "check the segment, or force the run (make replay-dlq still sends what earlier runs owe)",
            planned=planned_sends,
            median=median,
            deviation_pct=deviation,
        )
    return check
