"""Opening the warehouse file, and who holds it.

Two locks guard the DuckDB file:
- DuckDB's own: one process may write (it holds the file exclusively) or any number may read. A
  conflict comes back as an IOException naming the holder's PID; `connect` turns it into a
  `WarehouseBusy` line naming that process's command line.
- The warehouse lock (`BuildLock`, warehouse/lock.py's flock on `<name>.lock` beside the file): one
  writer (build, seed, generate, activation run) at a time. It dies with its process, so a `kill -9` never leaves a stale lock; the file
  holds the holder's pid and command for the message the next one prints.

A run holds the warehouse lock from start to finish but DuckDB's only while it writes (`WarehouseFile`):
between its write windows, readers (`runs`, `status`, `explain`) open the file read-only.

Every failure to open is one line: a directory, a file that is not DuckDB, a corrupt or truncated
file (exit 2, `WarehouseUnreadable`), another process holding it (exit 4, `WarehouseBusy`).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

from warehouse import paths
from warehouse.errors import WarehouseBusy, WarehouseError, WarehouseUnreadable
from warehouse.lock import warehouse_lock

_PID = re.compile(r"\(PID (\d+)\)")
_LOCKED = ("Could not set lock", "Conflicting lock")
_CORRUPT = (
    "not a valid DuckDB database",
    "Corrupt database",
    "Could not read enough bytes",
    "checksum",
    "Permission denied",
    "Is a directory",
    "Not a directory",
)
_DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of every DuckDB database file
_POLL_S = 0.2
# A writer between its windows waits this long for readers to let go of the file: they hold it for
# a query or two, so a longer wait means one that does not (a BI tool, the duckdb shell on the file).
WRITE_WAIT_S = 300.0


def label(path: Path) -> str:
    return f"the warehouse {path} (NBA_DUCKDB_PATH)"


def describe_pid(pid: int | None) -> str:
    """`pid 123 (python -m activation.cli --segment all ...)`, or just `pid 123` if it is gone."""
    if pid is None:
        return "another process"
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return f"pid {pid}"
    args = [a for a in raw.decode("utf-8", "replace").split("\0") if a]
    if args:
        args[0] = Path(args[0]).name
    cmd = " ".join(" ".join(args).split())  # one line, whatever the arguments hold
    return f"pid {pid} ({cmd[:117] + '...' if len(cmd) > 120 else cmd})"


def is_duckdb_file(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(12)[8:12] == _DUCKDB_MAGIC


def check_path(path: Path) -> None:
    """Fail at once, in one line, on a path that can never be a warehouse file."""
    if path.is_dir():
        raise WarehouseUnreadable(
            f"{label(path)} is a directory, not a DuckDB file: point NBA_DUCKDB_PATH at a file "
            f"(default {paths.default_duckdb_path()})"
        )
    if path.parent.exists() and not path.parent.is_dir():
        raise WarehouseUnreadable(f"{label(path)}: {path.parent} is not a directory")


def translate(exc: duckdb.Error, path: Path) -> WarehouseError:
    """DuckDB's error on opening `path` as one line: busy, unreadable, or (else) as it came."""
    message = str(exc)
    first = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
    if any(marker in message for marker in _LOCKED):
        match = _PID.search(message)
        pid = int(match.group(1)) if match else None
        return WarehouseBusy(
            f"{label(path)} is in use by {describe_pid(pid)}: wait for it to finish, then try again",
            pid=pid,
        )
    if any(marker in message for marker in _CORRUPT):
        return WarehouseUnreadable(
            f"{label(path)} is not a readable DuckDB database ({first}): restore it, or move it "
            "away to build a new warehouse (the ops tables in it, decision log and contact ledger, "
            "would be lost)"
        )
    return WarehouseError(f"cannot open {label(path)}: {first}")


def connect(path: Path | None = None, *, read_only: bool, wait_s: float = 0.0) -> duckdb.DuckDBPyConnection:
    """Open the warehouse; errors are one line. While another process holds it, retry for wait_s."""
    path = path or paths.duckdb_path()
    check_path(path)
    if read_only and not path.exists():
        raise WarehouseError(f"{label(path)} does not exist: run `make build` first")
    if path.exists() and path.stat().st_size > 0 and not is_duckdb_file(path):
        # before DuckDB opens it: DuckDB reads some other formats (SQLite) through an extension it
        # would download and load
        raise WarehouseUnreadable(
            f"{label(path)} is not a DuckDB file: point NBA_DUCKDB_PATH at this project's warehouse "
            f"(default {paths.default_duckdb_path()})"
        )
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:
            error = translate(exc, path)
            if isinstance(error, WarehouseBusy) and time.monotonic() < deadline:
                time.sleep(_POLL_S)
                continue
            raise error from None


def check_complete(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """A file shorter than the blocks its own header counts was truncated (a copy cut short, a full
    disk): DuckDB opens it and fails only when a query reaches a missing block, so say it now.
    Skipped while a WAL is pending (its replay allocates blocks the file does not hold yet)."""
    if path.with_name(path.name + ".wal").exists():
        return
    row = con.execute("select used_blocks, block_size from pragma_database_size()").fetchone()
    if row is None:
        return
    # used, not total: DuckDB truncates free blocks off the file's end at a checkpoint, and a file
    # after deletes (the ops tables' upserts) is then shorter than its total block count
    expected = int(row[0]) * int(row[1])
    size = path.stat().st_size
    if size < expected:
        raise WarehouseUnreadable(
            f"{label(path)} is truncated ({size} bytes, its header counts {expected} bytes of used blocks): "
            "restore it, or move it away to build a new warehouse (the ops tables in it would be lost)"
        )


class BuildLock:
    """One writer at a time per warehouse file (a build, a seed, an activation run): the warehouse
    lock of warehouse/lock.py (a flock on `<file>.lock` naming its holder, released however the
    holder exits, re-entrant within a process, so an activation run that builds is one writer)."""

    def __init__(self, db_path: Path | None = None, wait_s: float = 0.0, what: str = "build") -> None:
        self.db_path = db_path or paths.duckdb_path()
        self.wait_s = wait_s
        self.what = what
        self._lease: contextlib.AbstractContextManager[object] | None = None

    def __enter__(self) -> BuildLock:
        check_path(self.db_path)
        try:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WarehouseError(f"cannot create {self.db_path.parent}: {exc.strerror}") from None
        lease = warehouse_lock(self.db_path, command=f"nba-warehouse {self.what}", wait_s=self.wait_s)
        lease.__enter__()
        self._lease = lease
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._lease is not None:
            lease, self._lease = self._lease, None
            lease.__exit__(*exc)  # the lock sees the error: a refused file gets no lock file left


@contextlib.contextmanager
def reading(path: Path | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection for the block, with one-line errors."""
    con = connect(path, read_only=True)
    try:
        yield con
    finally:
        con.close()


class WarehouseFile:
    """The DuckDB file as a run uses it: opened for writing only inside `writing()` and read-only
    inside `reading()`, closed in between, so other processes can read it while the run decides or
    waits on a destination. Windows nest (an inner one reuses the open connection). Given `con`,
    every window is that connection, never closed here (a caller that holds the file itself)."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        con: duckdb.DuckDBPyConnection | None = None,
        wait_s: float = WRITE_WAIT_S,
    ) -> None:
        self.path = path or paths.duckdb_path()
        self.wait_s = wait_s
        self._held = con
        self._open: duckdb.DuckDBPyConnection | None = con
        self._writable = con is not None

    @classmethod
    def of(cls, con: duckdb.DuckDBPyConnection | WarehouseFile) -> WarehouseFile:
        return con if isinstance(con, WarehouseFile) else cls(con=con)

    @property
    def is_open(self) -> bool:
        return self._open is not None

    @contextlib.contextmanager
    def writing(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The file open for writing for the block: waits (up to `wait_s`) for readers to close it."""
        with self._window(read_only=False) as con:
            yield con

    @contextlib.contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The file open read-only for the block (alongside other readers; a writer waits)."""
        with self._window(read_only=True) as con:
            yield con

    @contextlib.contextmanager
    def _window(self, *, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        if self._open is not None:
            if not (read_only or self._writable):
                raise RuntimeError("a write window cannot open inside a read-only one")
            yield self._open
            return
        con = connect(self.path, read_only=read_only, wait_s=self.wait_s)
        self._open, self._writable = con, not read_only
        try:
            yield con
        finally:
            self._open = None
            con.close()
