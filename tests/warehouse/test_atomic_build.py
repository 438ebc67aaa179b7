"""Builds are atomic for users, keep the ops tables, and never run beside another writer (issue 14)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from testing.demo_warehouse import (
    DemoWarehouse,
    corrupt_raw_data,
    demo_layout,
    generate_demo_data,
    warehouse_env,
)
from warehouse import build, cli
from warehouse.access import BuildLock
from warehouse.errors import DbtFailed, WarehouseBusy, WarehouseUnreadable

MARTS = ("mart_marketing__customer_360", "mart_marketing__segment_scores", "mart_marketing__campaign_history")


def _snapshot(db: Path) -> dict[str, tuple[int, float]]:
    with duckdb.connect(str(db), read_only=True) as con:
        out = {}
        for mart in MARTS:
            n = con.execute(f"select count(*) from main.{mart}").fetchone()[0]  # type: ignore[index]
            h = con.execute(f"select sum(hash(columns(*))) from (select * from main.{mart})").fetchone()  # type: ignore[index]
            out[mart] = (n, float(sum(v for v in h if v is not None)))  # type: ignore[union-attr]
        return out


def _exec(db: Path, sql: str) -> None:
    with duckdb.connect(str(db)) as con:
        con.execute(sql)


def _one(db: Path, sql: str) -> object:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchone()[0]  # type: ignore[index]


OPS_ROWS = """
insert into ops.run_log (run_id, started_at, status, dry_run) values
    ('20261127T100000Z-aaaaaa', timestamp '2026-11-27 10:00:00', 'completed', true),
    ('20261127T110000Z-bbbbbb', timestamp '2026-11-27 11:00:00', 'completed', false);
insert into ops.decision_log (run_id, decision_id, as_of, customer_id, segment, arm, status, channel,
                              template_id, discount_pct, dry_run) values
    ('20261127T100000Z-aaaaaa', 'd1', timestamp '2026-11-27 14:00:00', 'C0000001', 'churn_rescue_nps',
     'treatment', 'send', 'email', 'cs_followup', 0, true),
    ('20261127T110000Z-bbbbbb', 'd1', timestamp '2026-11-27 14:00:00', 'C0000001', 'churn_rescue_nps',
     'treatment', 'send', 'email', 'cs_followup', 0, false);
insert into ops.delivery_log (run_id, decision_id, customer_id, destination, idempotency_key, attempt,
                              status, "at") values
    ('20261127T100000Z-aaaaaa', 'd1', 'C0000001', 'webhook', 'k1', 0, 'dry_run', timestamp '2026-11-27 10:00:01'),
    ('20261127T110000Z-bbbbbb', 'd1', 'C0000001', 'webhook', 'k1', 1, 'failed', timestamp '2026-11-27 11:00:01'),
    ('20261127T110000Z-bbbbbb', 'd1', 'C0000001', 'webhook', 'k1', 2, 'delivered', timestamp '2026-11-27 11:00:02');
insert into ops.contact_ledger values
    ('C0000001', 'email', 'webhook', timestamp '2026-11-27 14:00:00', 'd1', '20261127T110000Z-bbbbbb');
insert into ops.sync_state values ('webhook', 'C0000001', 'h1', 'delivered', null, null);
"""


def _write_and_get_killed(db: Path, sql: str) -> None:
    """A writer commits `sql`, then dies by SIGKILL before its checkpoint: the rows are in the WAL."""
    code = "import duckdb, os, signal, sys; c = duckdb.connect(sys.argv[1]); c.execute(sys.argv[2])\n"
    code += "os.kill(os.getpid(), signal.SIGKILL)"
    proc = subprocess.run([sys.executable, "-c", code, str(db), sql], check=False)
    assert proc.returncode == -signal.SIGKILL
    assert db.with_name(db.name + ".wal").exists(), "the committed rows are only in the WAL"


def test_a_killed_writer_s_wal_is_folded_in_and_every_ops_table_carried_with_its_ddl(
    small_env: DemoWarehouse, tmp_path: Path
) -> None:
    """Steps 2-3 of the build without dbt (the full build is tested in test_ops_semantics.py)."""
    db = small_env.duckdb_path
    _write_and_get_killed(db, OPS_ROWS)  # the product wrote between builds, then was killed
    previous = build._hold_previous(db, wait_s=0)
    assert previous is not None
    try:
        assert not db.with_name(db.name + ".wal").exists(), "the WAL was checkpointed into the file first"
        new = tmp_path / "new" / db.name
        new.parent.mkdir()
        carried = build.carry_over(previous, new, db)
    finally:
        previous.close()
    assert {k: carried[k] for k in ("ops.run_log", "ops.decision_log", "ops.delivery_log")} == {
        "ops.run_log": 2,
        "ops.decision_log": 2,
        "ops.delivery_log": 3,
    }
    assert set(carried) >= {
        "ops.contact_ledger",
        "ops.sync_state",
        "ops.dead_letter",
        "ops.decision_outcomes",
    }
    # The DDL came along: primary keys still hold, so the product's upserts keep working.
    with pytest.raises(duckdb.ConstraintException):
        _exec(new, "insert into ops.run_log (run_id) values ('20261127T100000Z-aaaaaa')")
    _exec(
        new,
        "insert or replace into ops.sync_state values ('webhook', 'C0000001', 'h2', 'pending', null, null)",
    )
    assert _one(new, "select count(*) from ops.sync_state") == 1
    assert _one(new, "select count(*) from information_schema.tables where table_schema = 'main'") == 0


def test_a_failed_rebuild_leaves_the_previous_marts_readable_and_unchanged(small_env: DemoWarehouse) -> None:
    db = small_env.duckdb_path
    _exec(db, OPS_ROWS)
    marts, stat = _snapshot(db), db.stat()
    corrupt_raw_data(small_env.raw_dir)  # duplicate customer ids, negative amounts, unknown customers
    with pytest.raises(DbtFailed) as info:
        build.build()
    message = str(info.value)
    assert "\n" not in message and message.endswith("the previous warehouse is unchanged")
    assert "unique_stg_raw__customers_customer_id" in info.value.failures
    assert (db.stat().st_ino, db.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert _snapshot(db) == marts  # what Python reads is the last good build, whole
    assert _one(db, "select count(*) from ops.delivery_log") == 3
    assert not build.build_dir(db).exists()


def test_a_failed_first_build_leaves_no_warehouse_file(tmp_path: Path) -> None:
    demo = demo_layout(tmp_path, customers=300)
    generate_demo_data(demo)
    corrupt_raw_data(demo.raw_dir)
    with warehouse_env(demo), pytest.raises(DbtFailed) as info:
        build.build()
    # the tests that guard the raw data fail, readably, in one line
    failed = set(info.value.failures)
    assert {"unique_stg_raw__customers_customer_id", "non_negative_stg_raw__orders_amount"} <= failed
    assert any(name.startswith("relationships_stg_raw__orders_customer_id") for name in failed)
    message = str(info.value)
    assert message.startswith("dbt build failed:") and "\n" not in message
    assert "unique_stg_raw__customers_customer_id (Got 3 results" in message
    assert message.endswith("no warehouse was written")
    assert not demo.duckdb_path.exists() and not build.build_dir(demo.duckdb_path).exists()
    left = [p.name for p in tmp_path.glob("warehouse.duckdb*") if p.suffix != ".lock"]
    assert not left  # only the (empty) lock file stays, by design (warehouse/lock.py)


@pytest.fixture
def writer(small_env: DemoWarehouse) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the warehouse open for writing, as a live activation run does."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); time.sleep(120)",
            str(small_env.duckdb_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    yield proc
    proc.kill()
    proc.wait()


def test_a_build_while_a_writer_holds_the_warehouse_is_one_line_naming_it(
    small_env: DemoWarehouse, writer: subprocess.Popen[str], capsys
) -> None:
    db = small_env.duckdb_path
    stat = db.stat()
    assert cli.main(["build"]) == 4
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"in use by pid {writer.pid} (python" in err and "time.sleep" in err
    assert (db.stat().st_ino, db.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert not (small_env.target_dir / "run_results.json").exists(), "no dbt run was started"
    # A run that needs the warehouse is told the same, instead of "marts missing" and a build beside it.
    with pytest.raises(WarehouseBusy) as info:
        build.ensure_warehouse()
    assert info.value.pid == writer.pid


def test_a_second_build_is_refused_naming_the_first(small_env: DemoWarehouse, capsys) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from warehouse.access import BuildLock\n"
            "with BuildLock(): print('ready', flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        assert cli.main(["build", "--wait", "0.5"]) == 4
        err = capsys.readouterr().err.strip()
        assert (
            "\n" not in err and f"(nba-warehouse build, pid {holder.pid} on" in err and "waited 0.5s" in err
        )
    finally:
        holder.kill()
        holder.wait()
    with BuildLock():  # the lock died with its holder: no stale lock after kill -9
        pass


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _checksum_broken(path: Path) -> None:
    with open(path, "r+b") as fh:
        fh.seek(5000)
        fh.write(b"garbage-garbage")


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: (p.unlink(), p.mkdir()), id="directory"),
        pytest.param(lambda p: p.write_bytes(os.urandom(64 * 1024)), id="random-bytes"),
        pytest.param(_truncated, id="truncated"),
        pytest.param(_checksum_broken, id="checksum"),
    ],
)
def test_an_unreadable_warehouse_file_is_one_line_and_exit_2_without_dbt(
    small_env: DemoWarehouse, damage, capsys
) -> None:
    db = small_env.duckdb_path
    damage(db)
    assert cli.main(["build"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(db) in err and "NBA_DUCKDB_PATH" in err
    assert not (small_env.target_dir / "run_results.json").exists(), "dbt never started"
    with pytest.raises(WarehouseUnreadable):
        build.missing_marts()
    if db.is_file():
        assert not db.with_name(db.name + ".wal").exists()


def test_the_cli_prints_one_line_and_no_traceback_for_a_directory(tmp_path: Path) -> None:
    env = dict(os.environ, NBA_DUCKDB_PATH=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "warehouse.cli", "build"], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "is a directory" in proc.stderr
