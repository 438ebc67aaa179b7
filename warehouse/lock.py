"""One writer at a time per warehouse: an advisory lock file next to the DuckDB file.

`<warehouse>.duckdb.lock` says who holds the warehouse (pid, run id, command, host, start time, as
one JSON line) and the holder keeps an exclusive `flock` on it while it runs. The kernel drops a
flock when its process ends in any way, kill -9 included, so the file of a dead holder is stale: the
next writer takes it over and says whose it was. A holder empties the file when it is done and never
deletes it, except the holder that created it when the warehouse it guards is refused (not ours, not
readable): nothing is left beside a file that is not ours. A writer that gets the flock of a file
deleted meanwhile opens the path again, so two processes never hold two files of the same name.

A second writer waits up to `wait_s` seconds (default: none), then raises WarehouseBusy, whose one
line names the holder. Re-entrant within one process (the activation run may build the warehouse
while it holds the lock). Standard library only and no project imports, so the warehouse build and
the activation run can both use it; it belongs beside `warehouse.paths` (`warehouse/lock.py`).

    with warehouse_lock(paths.duckdb_path(), command="nba-activate", run_id=run_id):
        ...
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from warehouse import errors

EXIT_BUSY = 4
log = logging.getLogger("warehouse.lock")


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str
    run_id: str | None
    host: str
    started_at: str

    def describe(self) -> str:
        run = f"run {self.run_id} " if self.run_id else ""
        return f"{run}({self.command}, pid {self.pid} on {self.host}, started {self.started_at})"

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        """The holder a lock file names, or None when the text is not a lock's (JSON of another shape
        included: a list, or an object without our pid and command, is someone else's file)."""
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        pid, command, run_id = data.get("pid"), data.get("command"), data.get("run_id")
        if not isinstance(pid, int) or not isinstance(command, str):
            return None
        return cls(
            pid=pid,
            command=command,
            run_id=run_id if isinstance(run_id, str) else None,
            host=str(data.get("host")),
            started_at=str(data.get("started_at")),
        )


class WarehouseBusy(errors.WarehouseBusy):
    """Another process holds the warehouse lock (a run or a build); names it."""

    exit_code = EXIT_BUSY

    def __init__(self, db_path: Path, holder: Holder | None, waited_s: float) -> None:
        self.db_path, self.holder = db_path, holder
        who = holder.describe() if holder else "another process"
        waited = f" (waited {waited_s:g}s)" if waited_s else ""
        super().__init__(
            f"the warehouse {db_path} is in use by {who}{waited}; run again when it has finished",
            pid=holder.pid if holder else None,
        )


@dataclass
class Lease:
    """What `warehouse_lock` yields: the lock file, and the dead holder it took over, if any."""

    path: Path
    holder: Holder
    stale: Holder | None = None


_HELD: dict[Path, tuple[Lease, int]] = {}  # lock file -> (lease, depth) held by this process
_GUARD = threading.Lock()


def lock_path(db_path: Path | str) -> Path:
    db = Path(db_path).resolve()
    return db.with_name(db.name + ".lock")


def current_holder(db_path: Path | str) -> Holder | None:
    """Who holds the warehouse lock of `db_path` now (None when nobody does); never takes the lock."""
    path = lock_path(db_path)
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return Holder.parse(path.read_text()) or Holder(0, "another process", None, "?", "?")
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@contextlib.contextmanager
def warehouse_lock(
    db_path: Path | str,
    *,
    command: str,
    run_id: str | None = None,
    wait_s: float = 0.0,
    poll_s: float = 0.2,
) -> Iterator[Lease]:
    path = lock_path(db_path)
    with _GUARD:
        held = _HELD.get(path)
        if held is not None:
            _HELD[path] = (held[0], held[1] + 1)
    if held is not None:
        try:
            yield held[0]
        finally:
            with _GUARD:
                lease, depth = _HELD[path]
                _HELD[path] = (lease, depth - 1)
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unusable(Path(db_path), path, exc) from None
    fd, created, lease = _open_and_acquire(path, Path(db_path), command, run_id, wait_s, poll_s)
    try:
        with _GUARD:
            _HELD[path] = (lease, 1)
        refused = False
        try:
            yield lease
        except errors.WarehouseUnreadable:  # NotOurs included: the file was refused, nothing was done
            refused = True
            raise
        finally:
            with _GUARD:
                del _HELD[path]
            if refused and created:  # leave nothing beside a file that is not ours (see _same_file)
                with contextlib.suppress(OSError):
                    path.unlink()
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _open_and_acquire(
    path: Path, db_path: Path, command: str, run_id: str | None, wait_s: float, poll_s: float
) -> tuple[int, bool, Lease]:
    """Open (creating it if need be) and lock the lock file: (fd, whether this call created it, lease).
    A lock file is removed only by the process that created it, while it holds it, when the warehouse
    was refused; a waiter that then gets the flock of the removed file opens the path again."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            try:
                fd, created = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), True
            except FileExistsError:
                fd, created = os.open(path, os.O_RDWR | os.O_CREAT, 0o644), False
        except OSError as exc:
            raise _unusable(db_path, path, exc) from None
        try:
            lease = _acquire(
                fd, path, db_path, command, run_id, max(0.0, deadline - time.monotonic()), poll_s
            )
        except BaseException:
            os.close(fd)
            raise
        if _same_file(fd, path):
            return fd, created, lease
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _unusable(db_path: Path, path: Path, exc: OSError) -> errors.WarehouseUnreadable:
    """One line for a lock file that cannot be opened: its folder is a file, it is a folder, ..."""
    where = f"the warehouse {db_path} (NBA_DUCKDB_PATH)"
    if (path.parent.exists() and not path.parent.is_dir()) or isinstance(exc, NotADirectoryError):
        return errors.WarehouseUnreadable(f"{where}: {path.parent} is not a directory")
    if path.is_dir():
        return _not_ours(db_path, path, "is a directory")
    return errors.WarehouseUnreadable(
        f"{where}: its lock file {path} cannot be opened ({exc.strerror or type(exc).__name__})"
    )


def _not_ours(db_path: Path, path: Path, what: str) -> errors.NotOurs:
    return errors.NotOurs(
        f"the warehouse {db_path} (NBA_DUCKDB_PATH): its lock file {path} {what}, not this project's lock; "
        "nothing was changed: move it away, or point NBA_DUCKDB_PATH at another file"
    )


def _same_file(fd: int, path: Path) -> bool:
    """Whether `fd` is still the file at `path` (not one removed, or replaced, while we waited)."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _acquire(
    fd: int, path: Path, db_path: Path, command: str, run_id: str | None, wait_s: float, poll_s: float
) -> Lease:
    started = time.monotonic()
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            waited = time.monotonic() - started
            if waited >= wait_s:
                try:
                    text = path.read_text()
                except FileNotFoundError:  # its creator, refused, removed it (see _open_and_acquire)
                    text = ""
                raise WarehouseBusy(db_path, Holder.parse(text), round(waited, 1)) from None
            time.sleep(min(poll_s, max(0.0, wait_s - waited)))
    previous = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    if previous and (os.fstat(fd).st_size > 4096 or Holder.parse(previous) is None):
        # someone else's file at <warehouse>.lock: never emptied (it was, and then written over)
        raise _not_ours(db_path, path, "holds something else")
    holder = Holder(
        pid=os.getpid(),
        command=command,
        run_id=run_id,
        host=socket.gethostname(),
        started_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(asdict(holder)) + "\n").encode(), 0)
    os.fsync(fd)
    stale = Holder.parse(previous) if previous else None
    if stale is not None:
        log.warning("took over the warehouse lock %s left by %s, which has ended", path, stale.describe())
    return Lease(path=path, holder=holder, stale=stale)
