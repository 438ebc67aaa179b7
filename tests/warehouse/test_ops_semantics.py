"""The product's own ops tables never fail the project's dbt tests (issue 14): after dry runs, live
runs with failures and retries, and reruns of the same day, `make build` is green, keeps every ops
row, and a reader that opened the warehouse before the swap keeps its consistent snapshot."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import duckdb
import pytest
import yaml

from activation.run import run_activation
from core.contracts import Arm, Channel, DeliveryStatus, Status
from testing.demo_warehouse import DemoWarehouse
from testing.local_servers import HubSpotServer, SalesforceServer, WebhookServer
from warehouse import build, paths

STAGING = paths.DBT_DIR / "models" / "staging"


def _accepted_values(model: str) -> dict[str, list[str]]:
    doc = yaml.safe_load((STAGING / f"{model}.yml").read_text())
    out: dict[str, list[str]] = {}
    for column in doc["models"][0]["columns"]:
        for test in column.get("data_tests") or []:
            if isinstance(test, dict) and "accepted_values" in test:
                out[column["name"]] = test["accepted_values"]["arguments"]["values"]
    return out


def test_the_ops_models_accept_exactly_the_contracts_values() -> None:
    """A status added to the contracts must reach the dbt tests (or every build after it fails)."""
    assert _accepted_values("stg_ops__delivery_attempts")["status"] == list(get_args(DeliveryStatus))
    decisions = _accepted_values("stg_ops__decisions")
    assert decisions["status"] == list(get_args(Status)) and decisions["arm"] == list(get_args(Arm))
    assert _accepted_values("stg_ops__contacts")["channel"] == list(get_args(Channel))


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local HubSpot, Salesforce and webhook servers that fail, throttle and half-fail requests."""
    knobs: dict[str, Any] = {
        "error_rate": 0.2,
        "rate_429": 0.1,
        "partial_failure_rate": 0.1,
        "retry_after_s": 0.01,
    }
    with (
        HubSpotServer(seed=21, **knobs) as hs,
        SalesforceServer(seed=22, **knobs) as sf,
        WebhookServer(seed=23, **knobs) as wh,
    ):
        for key, value in {
            "NBA_DESTINATIONS": "hubspot,salesforce,webhook",
            "NBA_HUBSPOT__TOKEN": hs.token,
            "NBA_HUBSPOT__BASE_URL": hs.url,
            "NBA_SALESFORCE__INSTANCE_URL": sf.url,
            "NBA_SALESFORCE__SESSION_ID": sf.session_id,
            "NBA_SALESFORCE__CA_BUNDLE": sf.cert_path,
            "REQUESTS_CA_BUNDLE": sf.cert_path,
            "NBA_SALESFORCE__RATE_PER_S": "1000",
            "NBA_WEBHOOK__URL": f"{wh.url}/hooks/nba",
            "NBA_WEBHOOK__SECRET": wh.secret,
            "NBA_WEBHOOK__RATE_PER_S": "1000",
            "NBA_DELIVERY__BACKOFF_BASE_S": "0.01",
            "NBA_DELIVERY__BACKOFF_MAX_S": "0.05",
            "NBA_DELIVERY__MAX_RETRIES": "8",
        }.items():
            monkeypatch.setenv(key, value)
        yield


def _activate(dry_run: bool, suppress_hours: float = 24.0) -> None:
    from activation.errors import DeliveryIncomplete
    from activation.settings import ActivateSettings
    from core.config import load_settings

    settings = load_settings(
        ActivateSettings,
        mode="rules",
        segment="all",
        suppress_hours=suppress_hours,
        dry_run=dry_run,
        force=True,
    )
    with contextlib.suppress(DeliveryIncomplete):  # chaos servers: some rows stay owed for the next run
        run_activation(settings)


def _q(db: Path, sql: str) -> Any:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchone()[0]  # type: ignore[index]


def test_build_is_green_after_dry_and_live_runs_and_swaps_under_a_reader(
    small_env: DemoWarehouse, servers: None
) -> None:
    db = small_env.duckdb_path
    _activate(dry_run=True)
    _activate(dry_run=True)
    _activate(dry_run=False)
    _activate(dry_run=False, suppress_hours=0)  # same day again: same decision ids, retries of failures
    _activate(dry_run=True, suppress_hours=0)
    # What the old tests rejected is the product's real behaviour:
    assert _q(db, "select count(*) from ops.delivery_log where attempt = 0 and status = 'dry_run'") > 0
    assert _q(db, "select count(*) - count(distinct decision_id) from ops.decision_log") > 0
    assert _q(db, "select count(*) from (select idempotency_key, attempt from ops.delivery_log group by all having count(*) > 1)") > 0  # fmt: skip
    assert _q(db, "select count(*) from ops.delivery_log where status = 'failed'") > 0, (
        "the servers failed some"
    )
    ops = {t: _q(db, f"select count(*) from ops.{t}") for t in ("decision_log", "delivery_log", "contact_ledger", "sync_state", "run_log")}  # fmt: skip
    metrics = "select count(*) from main.mart_marketing__activation_metrics"
    assert _q(db, metrics) > 0  # every run refreshes the metrics mart itself (activation/runs.py)
    # a column only the old file has: the build makes a new file (ops schemas carried over, main
    # rebuilt). A column of one of our marts, not a table: a table in main that no build of ours made
    # is the user's, and the build refuses to drop it (test_ownership.py)
    with duckdb.connect(str(db)) as con:
        con.execute("alter table main.mart_marketing__activation_metrics add column swap_marker integer")
    marker = "select count(*) from information_schema.columns where column_name = 'swap_marker'"
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); q = sys.argv[2]\n"
            "print(c.execute(q).fetchone()[0], flush=True); sys.stdin.readline()\n"
            "print(c.execute(q).fetchone()[0], flush=True)",
            str(db),
            marker,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdin is not None
        assert reader.stdout.readline().strip() == "1"
        build.build()  # raises DbtFailed (naming the tests) if the ops rows fail any of them
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "1", "an open reader keeps the file it opened"
    finally:
        reader.kill()
        reader.wait()
    assert {t: _q(db, f"select count(*) from ops.{t}") for t in ops} == ops, "no ops row lost"
    assert not build.build_dir(db).exists() and not db.with_name(db.name + ".wal").exists()
    with pytest.raises(duckdb.ConstraintException), duckdb.connect(str(db)) as con:  # the DDL came along
        con.execute("insert into ops.run_log (run_id) select run_id from ops.run_log limit 1")
    assert _q(db, marker) == 0 and _q(db, metrics) > 0, "new readers get the new marts"
    live_sends = "select sum(sends) from main.mart_marketing__activation_metrics where not is_dry_run"
    delivered = "select count(*) from ops.delivery_log where status = 'delivered'"
    assert _q(db, live_sends) == _q(db, delivered), "each delivery counted once (no fan-out)"
