"""One writer at a time: the warehouse lock refuses (or waits for) a second process in one line naming
the holder, takes over the lock of a dead one (kill -9 included), is re-entrant within a process, and
the activate command refuses before it builds, decides or writes anything."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from warehouse.errors import NotOurs, WarehouseUnreadable
from warehouse.lock import WarehouseBusy, lock_path, warehouse_lock

REPO = Path(__file__).resolve().parents[2]
HOLDER = """
import sys, time
from warehouse.lock import warehouse_lock
with warehouse_lock(sys.argv[1], command="test-holder", run_id="run-held"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _hold(db: Path, seconds: float = 60.0) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db), str(seconds)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_process_is_refused_in_one_line_naming_the_holder(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    holder = _hold(db)
    try:
        with pytest.raises(WarehouseBusy) as err, warehouse_lock(db, command="second"):
            pass
        message = str(err.value)
        assert "\n" not in message and "run run-held" in message and f"pid {holder.pid}" in message
        assert "test-holder" in message and str(db) in message and err.value.exit_code == 4
    finally:
        holder.kill()
        holder.wait()


def test_a_waiting_process_gets_the_lock_when_the_holder_ends(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    holder = _hold(db, seconds=0.5)
    started = time.monotonic()
    with warehouse_lock(db, command="waiter", run_id="run-2", wait_s=30, poll_s=0.05) as lease:
        assert time.monotonic() - started < 30 and lease.stale is None  # the holder emptied the file
        assert json.loads(lock_path(db).read_text())["run_id"] == "run-2"
    holder.wait()
    assert lock_path(db).read_text() == ""  # released: the file stays, empty


def test_the_lock_of_a_killed_holder_is_taken_over(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    holder = _hold(db)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with warehouse_lock(db, command="next", run_id="run-3") as lease:
        assert lease.stale is not None and lease.stale.pid == holder.pid and lease.stale.run_id == "run-held"
        assert lease.holder.pid == os.getpid()


def test_a_stale_lock_file_of_a_dead_pid_is_taken_over(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    stale = {"pid": 999999, "command": "nba-activate", "run_id": "old", "host": "h", "started_at": "x"}
    lock_path(db).write_text(json.dumps(stale))
    with warehouse_lock(db, command="next") as lease:
        assert lease.stale is not None and lease.stale.run_id == "old"


@pytest.mark.parametrize(
    "theirs",
    ["my notes, not a lock\n", "[1, 2]\n", '{"owner": "another tool"}\n', "x" * 5000],
    ids=["text", "a JSON list", "another JSON object", "a large file"],
)
def test_someone_else_s_file_at_the_lock_path_is_refused_and_left_as_it_is(tmp_path, theirs):
    """A file of the user's at <warehouse>.lock was emptied by every run (its text read as a stale
    holder, then truncated; a JSON list was a raw AttributeError): refused in one line, untouched."""
    db = tmp_path / "warehouse.duckdb"
    lock_path(db).write_text(theirs)
    with pytest.raises(NotOurs) as refused, warehouse_lock(db, command="next"):
        pytest.fail("the lock was taken over someone else's file")
    message = str(refused.value)
    assert len(message.splitlines()) == 1 and str(lock_path(db)) in message and "NBA_DUCKDB_PATH" in message
    assert lock_path(db).read_text() == theirs


def test_a_lock_path_that_cannot_be_a_lock_file_is_one_line(tmp_path):
    """<warehouse>.lock a directory, or the warehouse's folder a file: one line naming it (they were
    raw IsADirectoryError / FileExistsError tracebacks from make plan), nothing created."""
    db = tmp_path / "warehouse.duckdb"
    lock_path(db).mkdir()
    with pytest.raises(NotOurs, match="is a directory") as refused, warehouse_lock(db, command="next"):
        pass
    assert str(lock_path(db)) in str(refused.value) and lock_path(db).is_dir()
    (tmp_path / "notes.txt").write_text("mine")
    inside_a_file = tmp_path / "notes.txt" / "warehouse.duckdb"
    with (
        pytest.raises(WarehouseUnreadable, match="notes.txt is not a directory"),
        warehouse_lock(inside_a_file, command="next"),
    ):
        pass
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    with (
        warehouse_lock(db, command="outer", run_id="r") as outer,
        warehouse_lock(db, command="inner") as inner,
    ):
        assert inner is outer
    with warehouse_lock(db, command="again"):  # released after the outer block
        pass


def test_activate_refuses_before_building_when_another_run_holds_the_warehouse(tmp_path, monkeypatch, capsys):
    from activation.cli import main

    db = tmp_path / "fresh" / "warehouse.duckdb"  # no warehouse yet: a run would start a dbt build
    outbox = tmp_path / "outbox"
    monkeypatch.setenv("NBA_DUCKDB_PATH", str(db))
    monkeypatch.setenv("NBA_OUTBOX_DIR", str(outbox))
    holder = _hold(db)
    try:
        assert main(["activate", "--mode", "rules", "--dry-run", "--no-progress"]) == 4
    finally:
        holder.kill()
        holder.wait()
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "run run-held" in lines[0], lines
    assert not db.exists()  # no build was started beside the holder
    assert not outbox.exists()  # nor the plan's folder created (nor its .activate-nba mark)
    with warehouse_lock(db, command="after") as lease:  # free again once the holder is gone
        assert lease.stale is not None and lease.stale.run_id == "run-held"
