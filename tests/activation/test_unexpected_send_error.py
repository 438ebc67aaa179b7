"""An unexpected error in a destination's client (a bug, not an HTTP answer) is one line on the
console, naming the destination and the error, secrets scrubbed; its traceback is logged at DEBUG
only; the batch's rows are kept as `failed` and the next run delivers them."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from delivery_factory import make_decisions

from activation.delivery import deliver
from activation.destinations.base import ItemResult, OutboundItem, RateLimit
from core.contracts import Decision

SECRET = "tok-UNEXPECTED-0000-secret"


class Buggy:
    """A destination whose client raises something the engine does not know, until fixed."""

    name, max_batch = "buggy", 10
    rate_limit = RateLimit(max_requests=1000, window_s=1.0)

    def __init__(self, broken: bool = True) -> None:
        self.broken = broken

    @property
    def secrets(self) -> tuple[str, ...]:
        return (SECRET,)

    def accepts(self, decision: Decision) -> bool:
        return True

    def record_key(self, decision: Decision) -> str:
        return decision.customer_id

    def build_payload(self, decision: Decision) -> dict[str, Any]:
        return {"customer_id": decision.customer_id, "message": decision.message}

    def send_batch(self, items: list[OutboundItem]) -> list[ItemResult]:
        if self.broken:
            raise KeyError(f"no 'id' in answer to token {SECRET}\nsecond line")
        return [ItemResult(decision_id=it.decision_id, outcome="ok", record_id="x") for it in items]

    def close(self) -> None:
        pass


def test_the_console_gets_one_line_without_traceback_or_secret(tmp_path: Path) -> None:
    """As the CLI runs it (no logging configured: Python's last-resort handler prints warnings and
    errors to stderr)."""
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(f"""
        import duckdb
        from delivery_factory import make_decisions
        from activation.delivery import deliver
        from activation.settings import DeliverySettings
        from test_unexpected_send_error import Buggy

        con = duckdb.connect()
        summary = deliver(make_decisions(3, with_tasks=False), con=con, run_id="r1", dry_run=False,
                          outbox_dir={str(tmp_path)!r}, destinations=[Buggy()],
                          settings=DeliverySettings(backoff_base_s=0.01, seed=7))
        print(summary.destinations["buggy"].failed)
        """)
    )
    here = str(Path(__file__).parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, *sys.path])}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3"  # the rows are failed (kept for the next run), not lost
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr and SECRET not in done.stderr
    assert lines[0].startswith("buggy: unexpected KeyError:") and "***" in lines[0]


def test_traceback_is_at_debug_scrubbed_and_the_rows_are_delivered_next_run(con, fast, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="activation.delivery")
    decisions = make_decisions(3, with_tasks=False)
    first = deliver(decisions, con=con, run_id="r1", dry_run=False, outbox_dir=tmp_path,
                    destinations=[Buggy()], settings=fast)  # fmt: skip
    assert first.destinations["buggy"].failed == 3 and first.status == "failed"
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(loud) == 1 and loud[0].exc_info is None and "\n" not in loud[0].getMessage()
    debug = [
        r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG and "Traceback" in r.getMessage()
    ]
    assert len(debug) == 1 and "KeyError" in debug[0]
    assert SECRET not in caplog.text
    stored = con.execute("select distinct error from ops.delivery_log where status = 'failed'").fetchall()
    assert stored and all(SECRET not in e for (e,) in stored)
    second = deliver(decisions, con=con, run_id="r2", dry_run=False, outbox_dir=tmp_path,
                     destinations=[Buggy(broken=False)], settings=fast)  # fmt: skip
    assert second.ok and second.destinations["buggy"].delivered == 3
