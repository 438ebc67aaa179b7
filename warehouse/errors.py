"""Errors of the warehouse package: one base class; the CLI prints them as one line."""

from __future__ import annotations

from core.errors import NBAError


class WarehouseError(NBAError):
    """Base class: a user-facing warehouse problem with a one-line message."""


class DbtFailed(WarehouseError):
    """dbt exited non-zero; `failures` names the failing models/tests (empty if it failed earlier)."""

    def __init__(self, message: str, failures: list[str]):
        super().__init__(message)
        self.failures = failures


class WarehouseMissing(WarehouseError):
    """The DuckDB file or a mart is missing and could not be built."""
