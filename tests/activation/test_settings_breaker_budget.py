"""Settings from the environment, the ops DDL, the send-volume breaker, the rate budget, batching."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest
from delivery_factory import make_decision
from hypothesis import given, settings
from hypothesis import strategies as st

from activation.breaker import check_send_volume
from activation.delivery import batches
from activation.destinations import destinations_for
from activation.destinations.base import RateLimit, make_item
from activation.destinations.hubspot import HubSpotDestination, HubSpotSettings
from activation.errors import CircuitBreakerOpen, ConfigError
from activation.ratelimit import RateBudget
from activation.settings import ActivateSettings
from core.config import load_settings
from warehouse.ops_tables import ensure_ops_tables, ops_ddl_statements


def destinations_from_env():
    """The live destinations the environment configures (what `nba-activate activate --live` builds)."""
    return destinations_for(load_settings(ActivateSettings, dry_run=False))


def test_ops_tables_come_from_the_dbt_macro():
    statements = ops_ddl_statements()
    assert statements[0] == "create schema if not exists ops"
    assert not any("{%" in s or "{#" in s for s in statements)
    con = duckdb.connect()
    ensure_ops_tables(con)
    ensure_ops_tables(con)  # create-if-not-exists: idempotent
    tables = {
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables where table_schema='ops'"
        ).fetchall()
    }
    assert {"delivery_log", "contact_ledger", "delivery_state", "dead_letter"} <= tables


def test_missing_setting_names_the_variable(monkeypatch):
    monkeypatch.setenv("NBA_DESTINATIONS", "hubspot,webhook")
    with pytest.raises(ConfigError, match="NBA_HUBSPOT__TOKEN"):
        destinations_from_env()
    monkeypatch.setenv("NBA_HUBSPOT__TOKEN", "t0ken-value")
    with pytest.raises(ConfigError, match="NBA_WEBHOOK__URL"):
        destinations_from_env()
    monkeypatch.setenv("NBA_WEBHOOK__URL", "http://127.0.0.1:9/hooks/nba")
    monkeypatch.setenv("NBA_WEBHOOK__SECRET", "s3cret-value")
    monkeypatch.setenv("NBA_HUBSPOT__RATE_PER_10S", "190")
    hub, hook = destinations_from_env()
    assert hub.rate_limit == RateLimit(max_requests=190, window_s=10.0) and hook.name == "webhook"
    assert "t0ken-value" not in repr(hub.settings)  # type: ignore[attr-defined]
    monkeypatch.setenv("NBA_HUBSPOT__RATE_PER_10S", "many")
    with pytest.raises(ConfigError, match="NBA_HUBSPOT__RATE_PER_10S"):
        destinations_from_env()
    monkeypatch.setenv("NBA_DESTINATIONS", "hubspot,marketo")
    with pytest.raises(ConfigError, match="NBA_DESTINATIONS"):
        destinations_from_env()
    monkeypatch.setenv("NBA_DESTINATIONS", "")
    with pytest.raises(ConfigError, match="NBA_DESTINATIONS"):
        destinations_from_env()
    monkeypatch.delenv("NBA_HUBSPOT__RATE_PER_10S")
    monkeypatch.setenv("NBA_DELIVERY__MAX_RETRIES", "7")
    assert load_settings(ActivateSettings).delivery.max_retries == 7
    monkeypatch.setenv("NBA_DELIVERY__MAX_RETRIES", "-1")
    with pytest.raises(ConfigError, match="NBA_DELIVERY__MAX_RETRIES: must be a whole number from 0 to 20"):
        load_settings(ActivateSettings)


def test_payload_is_pure_and_hash_ignores_the_run_id():
    dest = HubSpotDestination(HubSpotSettings(token="x-token", base_url="http://127.0.0.1:9"))
    a = make_item(dest, make_decision(1))
    b = make_item(dest, make_decision(1, run_id="another-run"))
    assert (
        a.payload == b.payload and a.payload_hash == b.payload_hash and a.idempotency_key == b.idempotency_key
    )
    c = make_item(dest, make_decision(1, message="different"))
    assert c.payload_hash != a.payload_hash and c.idempotency_key != a.idempotency_key


def _history(con: duckdb.DuckDBPyConnection, counts: list[int]) -> None:
    """Live runs with `count` send decisions each, delivered; plus what must not count as history: a
    dry run, a rerun that only re-sent an earlier run's rows, a replay."""
    for n, count in enumerate(counts):
        con.executemany(
            "insert into ops.decision_log (run_id, decision_id, status, dry_run) values (?, ?, 'send', false)",
            [(f"run-{n}", f"d{i}") for i in range(count)],
        )
        con.executemany(
            "insert into ops.delivery_log (run_id, decision_id, destination, status, \"at\") values (?, ?, 'hubspot', ?, ?)",
            [(f"run-{n}", f"d{i}", "delivered", datetime(2026, 1, n + 1)) for i in range(count)],
        )
    con.execute(
        "insert into ops.decision_log (run_id, decision_id, status, dry_run) values ('dry', 'z', 'send', true)"
    )
    con.execute("insert into ops.delivery_log (run_id, decision_id, status) values ('dry', 'z', 'dry_run')")
    con.execute(
        "insert into ops.decision_log (run_id, decision_id, status, dry_run) values ('retry', 'y', 'suppressed', false)"
    )
    con.execute(
        "insert into ops.delivery_log (run_id, decision_id, status, \"at\") values ('retry', 'd1', 'delivered', '2026-02-01')"
    )
    con.execute(
        "insert into ops.decision_log (run_id, decision_id, status, dry_run) values ('replay-1', 'x', 'send', false)"
    )
    con.execute(
        "insert into ops.delivery_log (run_id, decision_id, status, \"at\") values ('replay-1', 'x', 'delivered', '2026-02-02')"
    )


def test_circuit_breaker_blocks_a_volume_spike_unless_forced(con):
    assert not check_send_volume(con, 5000, max_deviation_pct=50).blocked  # no history yet
    _history(con, [100, 90, 110])
    assert check_send_volume(con, 120, max_deviation_pct=50).median == 100
    with pytest.raises(CircuitBreakerOpen, match="deviate 200% from the median 100"):
        check_send_volume(con, 300, max_deviation_pct=50)
    with pytest.raises(CircuitBreakerOpen):
        check_send_volume(con, 10, max_deviation_pct=50)  # a collapse is as suspicious as a spike
    assert check_send_volume(con, 0, max_deviation_pct=50).history == [110, 90, 100]  # nothing new: passes
    forced = check_send_volume(con, 300, max_deviation_pct=50, force=True)
    assert forced.blocked and forced.forced
    assert not check_send_volume(con, 300, max_deviation_pct=50, min_history=4).blocked


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@settings(max_examples=60, deadline=None)
@given(
    limit=st.integers(1, 20),
    window=st.floats(0.1, 10),
    gaps=st.lists(st.floats(0, 2), min_size=1, max_size=120),
)
def test_rate_budget_never_exceeds_the_declared_limit_in_any_window(limit, window, gaps):
    clock = FakeClock()
    budget = RateBudget(
        RateLimit(max_requests=limit, window_s=window), safety_s=0.0, clock=clock, sleep=clock.sleep
    )
    sent = []
    for gap in gaps:
        clock.now += gap
        budget.acquire()
        sent.append(clock.now)
    for i in range(len(sent)):
        in_window = [t for t in sent if sent[i] - window < t <= sent[i]]
        assert len(in_window) <= limit


def test_rate_budget_honours_a_hold():
    clock = FakeClock()
    budget = RateBudget(RateLimit(max_requests=100, window_s=1), safety_s=0, clock=clock, sleep=clock.sleep)
    budget.acquire()
    budget.hold(2.5)
    assert budget.acquire() == pytest.approx(2.5)


@given(keys=st.lists(st.sampled_from("abcdef"), max_size=60), size=st.integers(1, 10))
def test_batches_respect_size_order_and_unique_keys(keys, size):
    dest = HubSpotDestination(HubSpotSettings(token="x-token", base_url="http://127.0.0.1:9"))
    items = [make_item(dest, make_decision(i, customer_id=k)) for i, k in enumerate(keys)]
    groups = batches(items, size)
    assert [it for g in groups for it in g] == items
    for g in groups:
        assert 0 < len(g) <= size and len({it.record_key for it in g}) == len(g)
