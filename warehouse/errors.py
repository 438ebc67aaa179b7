"""Errors of the warehouse package: one base class; every CLI prints them as one line and exits with
the error's `exit_code` (1: a build failed, 2: bad input such as an unreadable warehouse file,
4: another process holds the warehouse, try again when it is done; the same codes as nba-activate)."""

from __future__ import annotations

from core.errors import NBAError


class WarehouseError(NBAError):
    """Base class: a user-facing warehouse problem with a one-line message."""

    exit_code = 1


class DbtFailed(WarehouseError):
    """dbt exited non-zero; `failures` names the failing models/tests (empty if it failed earlier)."""

    def __init__(self, message: str, failures: list[str]):
        super().__init__(message)
        self.failures = failures


class WarehouseMissing(WarehouseError):
    """The DuckDB file or a mart is missing and could not be built."""


class WarehouseUnreadable(WarehouseError):
    """NBA_DUCKDB_PATH is a directory, not a DuckDB file, corrupt, truncated or not readable."""

    exit_code = 2


class TruthMissing(WarehouseError, FileNotFoundError):
    """The synthetic generator's ground truth, which the evals score against, is not there."""

    exit_code = 2


class WarehouseBusy(WarehouseError):
    """Another process holds the warehouse (a build, or a run writing to it); names the holder."""

    exit_code = 4

    def __init__(self, message: str, pid: int | None = None):
        super().__init__(message)
        self.pid = pid


class NotOurs(WarehouseUnreadable):
    """NBA_DUCKDB_PATH, or an outbox, reports or cache folder, holds data this project did not write:
    nothing is built or written over it (warehouse/ownership.py)."""


class BadSetting(WarehouseError):
    """An environment variable or option has a value it cannot take."""

    exit_code = 2
