"""Read while it runs (issue 30, item 2): a run holds DuckDB's file for writing only while it writes,
so `status` (with the run's progress), `runs` and `explain` of the previous run answer while a slow
LLM plan is deciding; a second writer is still refused in one line naming the run; and the run then
completes with the same decisions as a run nobody read during."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from run_helpers import ROOT, query, subprocess_env

from activation.cli import main as cli
from activation.run import run_activation
from activation.run_progress import progress_path
from activation.settings import ActivateSettings
from core.config import load_settings
from testing.local_servers.chat import ChatServer

# v1 drafts without the learned ranking: no model to train first, the run's time is the LLM's
SLOW_PLAN = [
    *[sys.executable, "-m", "activation.cli", "plan", "--mode", "llm", "--prompt-version", "v1"],
    *["--no-progress", "--output", "json"],
]
DECISIONS = (
    "select decision_id, customer_id, status, channel, template_id, discount_pct, subject, message, "
    "fallback_reason from ops.decision_log where run_id = ? order by customer_id"
)


@pytest.fixture
def slow_llm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ChatServer]:
    """A chat server that takes a while over every answer, and the variables that point MODE=llm at it."""
    with ChatServer(latency_ms=400) as server:
        assert isinstance(server, ChatServer)
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-local-test")
        monkeypatch.setenv("NBA_LIMIT", "60")
        yield server


def _timed(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str, float]:
    capsys.readouterr()
    t0 = time.monotonic()
    code = cli(argv)
    took = time.monotonic() - t0
    out, err = capsys.readouterr()
    return code, out, err, took


def _wait_deciding(db: Path, proc: subprocess.Popen[bytes], timeout: float = 180.0) -> dict:
    """The run's progress once it is part-way through its LLM calls."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            data = json.loads(progress_path(db).read_text())
        except (OSError, ValueError):
            data = {}
        if data.get("step", "").startswith("deciding") and 0 < data["done"] < data["total"]:
            return data
        time.sleep(0.05)
    raise AssertionError(f"the run never showed progress in its deciding step (exit {proc.poll()})")


def _reads_during_the_run(db: Path, proc: subprocess.Popen[bytes], customer: tuple[str, str], capsys) -> str:
    """status, runs and explain while the run decides; returns the running run's id."""
    _wait_deciding(db, proc)
    code, out, err, took = _timed(capsys, ["status", "--output", "json"])
    assert code == 0 and took < 5, (err, took)
    info = json.loads(out)
    progress = info["progress"]
    assert progress["step"] == "deciding (LLM calls)" and 0 < progress["done"] < progress["total"], info
    assert progress["elapsed_s"] > 0 and progress["left_s"] is not None and progress["left_s"] >= 0
    running = progress["run_id"]
    assert info["busy"].startswith(f"run {running} ") and info["latest"]["run_id"] == running
    assert info["latest"]["status"] == "running"  # the running row, not shown abandoned

    code, out, err, took = _timed(capsys, ["status"])
    assert code == 0 and took < 5 and f"running: run {running}" in out and "deciding (LLM calls)" in out, out

    code, out, err, took = _timed(capsys, ["runs", "--output", "json"])
    assert code == 0 and took < 5, (err, took)
    rows = json.loads(out)
    assert [r["status"] for r in rows[:2]] == ["running", "completed"] and rows[0]["run_id"] == running

    code, out, err, took = _timed(capsys, ["explain", "--customer-id", customer[0], "--output", "json"])
    assert code == 0 and took < 5, (err, took)
    assert json.loads(out)["decision"]["decision_id"] == customer[1]  # the previous run's decision

    # a second writer is refused, as before, in one line naming the run
    code, out, err, _ = _timed(capsys, ["plan", "--mode", "rules", "--no-progress"])
    lines = err.strip().splitlines()
    assert code == 4 and len(lines) == 1 and f"run {running}" in lines[0], err
    assert proc.poll() is None, "the run was still deciding while everything above was read"
    return running


def test_status_runs_and_explain_answer_while_a_slow_run_decides(
    warehouse_copy: Path, slow_llm: ChatServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    untouched = tmp_path / "untouched.duckdb"  # the same warehouse, for a run nobody reads during
    shutil.copy(warehouse_copy, untouched)
    previous = run_activation(load_settings(ActivateSettings, dry_run=True, mode="rules", limit=20))
    (customer,) = query(
        warehouse_copy,
        "select customer_id, decision_id from ops.decision_log where run_id = ? order by customer_id limit 1",
        [previous.run_id],
    )
    monkeypatch.setenv("NBA_CACHE_DIR", str(tmp_path / "cache-read"))
    proc = subprocess.Popen(
        SLOW_PLAN, env=subprocess_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        running = _reads_during_the_run(warehouse_copy, proc, customer, capsys)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err.decode()[-3000:]
    summary = json.loads(out)
    assert summary["run_id"] == running and summary["status"] == "completed"
    assert summary["llm_calls"] > 0
    assert not progress_path(warehouse_copy).exists()  # removed when the run ended
    assert query(warehouse_copy, "select status from ops.run_log where run_id = ?", [running]) == [
        ("completed",)
    ]

    # the same two runs on the copy, with nobody reading: the same decisions
    monkeypatch.setenv("NBA_DUCKDB_PATH", str(untouched))
    monkeypatch.setenv("NBA_CACHE_DIR", str(tmp_path / "cache-quiet"))
    run_activation(load_settings(ActivateSettings, dry_run=True, mode="rules", limit=20))
    quiet = run_activation(load_settings(ActivateSettings, dry_run=True, mode="llm", prompt_version="v1"))
    read = query(warehouse_copy, DECISIONS, [running])
    assert len(read) == 60 and read == query(untouched, DECISIONS, [quiet.run_id])
    assert summary["counts"] == quiet.counts and summary["plan"] == quiet.plan


LIVE = [sys.executable, "-m", "activation.cli", "activate", "--mode", "rules", "--live", "--no-progress"]


def test_a_live_run_writes_each_batch_and_is_read_while_it_sends(
    warehouse_copy: Path, start_servers, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    s = start_servers(hubspot={"latency_ms": 150})
    monkeypatch.setenv("NBA_HUBSPOT__MAX_BATCH", "10")
    proc = subprocess.Popen(
        [*LIVE, "--limit", "200", "--output", "json"],
        env=subprocess_env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 180
        while s.hubspot.stats()["total_writes"] < 20 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        code, out, err, took = _timed(capsys, ["status", "--output", "json"])
        assert code == 0 and took < 5, (err, took)
        info = json.loads(out)
        assert info["progress"]["step"] == "hubspot" and info["progress"]["done"] > 0, info
        running = info["progress"]["run_id"]
        delivered = query(
            warehouse_copy,
            "select count(*) from ops.delivery_state where last_run_id = ? and status = 'delivered'",
            [running],
        )[0][0]
        assert delivered >= 10  # written batch by batch, readable while the run still sends
        code, out, _, took = _timed(capsys, ["runs", "--output", "json"])
        assert code == 0 and took < 5 and json.loads(out)[0]["status"] == "running"
        assert proc.poll() is None, "the run was still sending while it was read"
        out_b, err_b = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err_b.decode()[-3000:]
    summary = json.loads(out_b)
    sends = summary["counts"]["send"]
    assert all(d["delivered"] == sends for d in summary["destinations"].values()), summary["destinations"]
    assert query(warehouse_copy, "select status from ops.run_log where run_id = ?", [running]) == [
        ("completed",)
    ]
    assert query(warehouse_copy, "select count(*) from ops.delivery_state where status <> 'delivered'") == [
        (0,)
    ]
