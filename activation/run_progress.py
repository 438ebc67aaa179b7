"""What a run is doing now, for `status` while it runs: a small JSON file beside the warehouse lock.

A run holds DuckDB's file only while it writes, so its progress cannot live in the warehouse (the
run would have to open it for every step, and a reader could not see a transaction in flight). The
run writes `<warehouse>.duckdb.progress` instead: run id, step, done/total, when the run and the
step started, and the time the step has left at its rate so far. Each write is a temp file renamed
over the old one (atomic), at most every `every_s` seconds, and at a step's start and end. `status`
shows it while the run holds the warehouse lock under the same run id; a file left by a run that
died is ignored (its run id no longer holds the lock) and replaced by the next run's.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from activation.progress import Advance, ProgressFactory
from warehouse.lock import lock_path


def progress_path(db_path: Path | str) -> Path:
    lock = lock_path(db_path)
    return lock.with_name(lock.name.removesuffix(".lock") + ".progress")


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")


class RunProgress:
    """The run's steps, written to the progress file; `factory` also drives the run's progress bars."""

    def __init__(
        self,
        db_path: Path | str,
        run_id: str,
        *,
        command: str,
        bars: ProgressFactory | None = None,
        every_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path, self.run_id, self.command = progress_path(db_path), run_id, command
        self.bars, self.every_s, self.clock = bars, every_s, clock
        self.t0, self.started_at = clock(), datetime.now(UTC)
        self._last = float("-inf")
        self._step = ""  # the step written last: a report from another one is written at once
        self.foreign = _someone_elses(self.path)  # then left as it is: this run shows no progress

    def step(self, label: str, total: int = 0) -> Advance:
        """A step of the run (`total` items to do, 0 for a step without a count); returns `advance(n)`."""
        start, done, base = self.clock(), 0, None
        self._write(label, 0, total, start, None)

        def advance(n: int) -> None:
            nonlocal done, base
            done += n
            now = self.clock()
            base = base or (now, done)  # the rate counts from the first report (a step may start with a jump)
            rate = (done - base[1]) / (now - base[0]) if now > base[0] and done > base[1] else None
            if now - self._last >= self.every_s or done >= total or self._step != label:
                self._write(label, done, total, start, (total - done) / rate if rate else None)

        return advance

    def factory(self) -> ProgressFactory:
        """A step per bar: the file follows whichever step reported last."""

        def make(label: str, total: int) -> Advance:
            mine, bar = self.step(label, total), self.bars(label, total) if self.bars else None

            def advance(n: int) -> None:
                mine(n)
                if bar is not None:
                    bar(n)

            return advance

        return make

    def _write(self, label: str, done: int, total: int, start: float, left: float | None) -> None:
        if self.foreign:
            return
        now = self.clock()
        self._last, self._step = now, label
        data = {
            "run_id": self.run_id,
            "command": self.command,
            "pid": os.getpid(),
            "started_at": _iso(self.started_at),
            "step": label.strip().removeprefix("→").strip(),
            "done": done,
            "total": total,
            "step_elapsed_s": round(now - start, 1),
            "elapsed_s": round(now - self.t0, 1),
            "left_s": round(left, 1) if left is not None else None,
            "updated_at": _iso(datetime.now(UTC)),
        }
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(data), encoding="utf-8")
            tmp.replace(self.path)
        except OSError:  # progress is for people watching: never a reason for a run to fail
            pass

    def close(self) -> None:
        if self.foreign:
            return
        with suppress(OSError):
            self.path.unlink(missing_ok=True)


def _someone_elses(path: Path) -> bool:
    """Whether what is at the progress path is not a run's progress file (ours, or one a dead run
    left, is a small JSON object with its run id and command): a user's file or folder of that name
    is never replaced, nor deleted at the run's end (both happened)."""
    if not (path.exists() or path.is_symlink()):
        return False
    try:
        if not path.is_file() or path.stat().st_size > 65536:
            return True
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    return not (isinstance(data, dict) and "run_id" in data and "command" in data)


@contextmanager
def run_progress(
    db_path: Path | str, run_id: str, *, command: str, bars: ProgressFactory | None = None
) -> Iterator[RunProgress]:
    progress = RunProgress(db_path, run_id, command=command, bars=bars)
    try:
        yield progress
    finally:
        progress.close()


def read_progress(db_path: Path | str, run_id: str | None) -> dict[str, Any] | None:
    """The progress of run `run_id` (the holder of the warehouse lock), as of now; None without one."""
    try:
        data = json.loads(progress_path(db_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not run_id or data.get("run_id") != run_id:
        return None
    try:
        since = (datetime.now(UTC) - datetime.fromisoformat(data["updated_at"])).total_seconds()
    except (KeyError, TypeError, ValueError):
        since = 0.0
    since = max(0.0, since)
    data["elapsed_s"] = round(float(data.get("elapsed_s") or 0) + since, 1)
    if data.get("left_s") is not None:
        data["left_s"] = round(max(0.0, float(data["left_s"]) - since), 1)
    return data
