"""`make llm-batch-run` is resumable (issue 28, item 4): killed with SIGKILL mid-run and run again, no
answered request is asked twice (only those in flight at the kill may be), none is lost, and the
output equals an uninterrupted run's. A half-written last line is dropped. No model: the upstream is
the deterministic chat server, which logs every body it receives."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from agent.batch import BatchFileError
from agent.batch_run import run_file
from core.config import RunConfig, load_settings
from testing.local_servers.chat import ChatServer, body_hash

ROOT = Path(__file__).resolve().parents[2]
REQUESTS = 40
CONCURRENCY = 3


@pytest.fixture
def chat(monkeypatch: pytest.MonkeyPatch) -> Iterator[ChatServer]:
    with ChatServer(latency_ms=60) as server:  # slow enough to be killed mid-run
        assert isinstance(server, ChatServer)
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-local-test")
        monkeypatch.setenv("NBA_LLM__CONCURRENCY", str(CONCURRENCY))
        yield server


def _input(path: Path) -> dict[str, str]:
    """A Batch API input file of distinct requests; {body hash: custom_id}."""
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}, "required": ["n"]}
    ids = {}
    with path.open("w") as fh:
        for i in range(REQUESTS):
            body = {
                "model": "m",
                "messages": [{"role": "user", "content": f"request {i}"}],
                "response_format": {"type": "json_schema", "json_schema": {"name": "A", "schema": schema}},
            }
            ids[body_hash(body)] = f"req-{i:03d}"
            fh.write(
                json.dumps(
                    {
                        "custom_id": f"req-{i:03d}",
                        "method": "POST",
                        "url": "/v1/chat/completions",
                        "body": body,
                    }
                )
                + "\n"
            )
    return ids


def _run_cli(file: Path, out: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "agent.batch_cli", "run", "--file", str(file), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _answered(out: Path) -> list[str]:
    return [json.loads(line)["custom_id"] for line in out.read_text().splitlines()]


def test_kill_9_mid_run_then_rerun_asks_nothing_twice_and_loses_nothing(
    chat: ChatServer, tmp_path: Path
) -> None:
    file, out = tmp_path / "requests.jsonl", tmp_path / "answers.jsonl"
    ids = _input(file)
    proc = _run_cli(file, out)
    deadline = time.monotonic() + 120
    while len(chat.received) < 12 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    first = _answered(out)
    asked_first = len(chat.received)
    assert 0 < len(first) < REQUESTS  # killed mid-run, with answers on disk

    again = _run_cli(file, out)
    stdout, stderr = again.communicate(timeout=180)
    assert again.returncode == 0, stderr.decode()
    assert f"already answered: {len(first)}" in stdout.decode()
    final = _answered(out)
    assert sorted(final) == sorted(ids.values())  # none lost, each once
    asked = Counter(ids[h] for h in chat.received)
    twice = {cid for cid, n in asked.items() if n > 1}
    assert max(asked.values()) <= 2 and len(twice) <= CONCURRENCY  # only the requests in flight at the kill
    assert not twice & set(first)  # no answered request was asked again
    assert len(chat.received) == asked_first + REQUESTS - len(first)

    # the same lines as an uninterrupted run (the order is the workers')
    whole = tmp_path / "whole.jsonl"
    counts = run_file(load_settings(RunConfig).llm, file, whole)
    assert counts == {"requests": REQUESTS, "already_answered": 0, "answered": REQUESTS, "failed": 0}
    assert sorted(whole.read_text().splitlines()) == sorted(out.read_text().splitlines())


def _answered_once(tmp_path: Path):
    """(settings, FILE, OUT, OUT's lines) after one whole run of the input file."""
    file, out = tmp_path / "requests.jsonl", tmp_path / "answers.jsonl"
    _input(file)
    settings = load_settings(RunConfig).llm
    run_file(settings, file, out)
    return settings, file, out, out.read_text().splitlines()


def test_a_half_written_last_line_is_dropped_and_asked_again(chat: ChatServer, tmp_path: Path) -> None:
    settings, file, out, lines = _answered_once(tmp_path)
    out.write_text(
        "\n".join(lines[:5]) + "\n" + lines[5][: len(lines[5]) // 2]
    )  # killed while writing line 6
    chat.received.clear()
    counts = run_file(settings, file, out)
    assert counts == {"requests": REQUESTS, "already_answered": 5, "answered": REQUESTS - 5, "failed": 0}
    assert len(chat.received) == REQUESTS - 5
    assert sorted(out.read_text().splitlines()) == sorted(lines)


def test_the_first_line_half_written_is_dropped_too(chat: ChatServer, tmp_path: Path) -> None:
    settings, file, out, lines = _answered_once(tmp_path)
    out.write_text(lines[0][:40])  # killed while writing the first line
    assert run_file(settings, file, out)["answered"] == REQUESTS
    assert sorted(out.read_text().splitlines()) == sorted(lines)


@pytest.mark.parametrize(
    "theirs",
    [b"my notes\nthe last line, not ended", b"one line, not ended", b'{"a": 1}', b"my notes\n"],
    ids=["last line not ended", "one line not ended", "JSON, not an answer", "text"],
)
def test_someone_else_s_file_at_out_is_refused_and_left_as_it_is(
    chat: ChatServer, tmp_path: Path, theirs: bytes
) -> None:
    """make llm-batch-run OUT=<a file of the user's>: its last line, when not ended by a line break,
    was cut off as a killed run's half-written line before the refusal; a one-line file was emptied
    and then written into. OUT=<a folder> was a raw IsADirectoryError."""
    file, out = tmp_path / "requests.jsonl", tmp_path / "notes.txt"
    _input(file)
    out.write_bytes(theirs)
    settings = load_settings(RunConfig).llm
    with pytest.raises(BatchFileError, match="line 1 is not a Batch API output line"):
        run_file(settings, file, out)
    assert out.read_bytes() == theirs and chat.received == []
    with pytest.raises(BatchFileError, match="is a folder"):
        run_file(settings, file, tmp_path)


def test_failed_requests_are_not_written_and_a_rerun_asks_them(chat: ChatServer, tmp_path: Path) -> None:
    file, out = tmp_path / "requests.jsonl", tmp_path / "answers.jsonl"
    _input(file)
    settings = load_settings(RunConfig).llm
    broken = settings.model_copy(update={"base_url": "http://127.0.0.1:9/v1"})  # nothing listens there
    counts = run_file(broken, file, out)
    assert counts["failed"] == REQUESTS and counts["answered"] == 0 and out.read_text() == ""
    counts = run_file(settings, file, out)
    assert counts["answered"] == REQUESTS and len(_answered(out)) == REQUESTS


def test_kill_9_mid_llm_plan_then_rerun_asks_only_what_was_not_answered(
    warehouse_copy: Path, chat: ChatServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live path resumes through the decision cache: each answer is committed as it arrives."""
    monkeypatch.setenv("NBA_LIMIT", "80")
    monkeypatch.setenv("NBA_MODE", "llm")
    cmd = [sys.executable, "-m", "activation.cli", "plan", "--no-progress", "--output", "json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while len(chat.received) < 10 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    asked_first = len(chat.received)

    rerun = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr.decode()
    summary = json.loads(rerun.stdout)
    asked = Counter(chat.received)
    assert summary["llm_calls"] == len(chat.received) - asked_first
    assert max(asked.values()) <= 2 and sum(n > 1 for n in asked.values()) <= CONCURRENCY  # in flight only

    # an uninterrupted plan (its own cache) asks each distinct request once and decides the same
    monkeypatch.setenv("NBA_CACHE_DIR", str(tmp_path / "uninterrupted"))
    whole = subprocess.run(
        cmd, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, capture_output=True, timeout=300
    )
    assert whole.returncode == 0, whole.stderr.decode()
    assert json.loads(whole.stdout)["llm_calls"] == len(asked)
    assert summary["llm_calls"] < len(asked)  # the rerun asked only what the killed run had not answered
    runs = [summary["run_id"], json.loads(whole.stdout)["run_id"]]
    con = duckdb.connect(str(warehouse_copy), read_only=True)
    try:
        got = [
            con.execute(
                "select decision_id, status, channel, template_id, discount_pct, message, fallback_reason "
                "from ops.decision_log where run_id = ? order by customer_id",
                [run],
            ).fetchall()
            for run in runs
        ]
    finally:
        con.close()
    assert got[0] == got[1] and len(got[0]) == 80
