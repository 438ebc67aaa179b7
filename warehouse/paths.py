"""Where things live. Every path is repo-relative by default and overridable by one env variable,
read at call time so tests can point a whole run at a temporary directory."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_DIR = REPO_ROOT / "warehouse" / "dbt"


def _env_path(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    return Path(value).resolve() if value else default


def raw_dir() -> Path:
    """Generated raw data (Parquet), read by dbt sources."""
    return _env_path("NBA_RAW_DIR", REPO_ROOT / "warehouse" / "data" / "raw")


def truth_dir() -> Path:
    """Ground truth of the synthetic response model. Never read by a policy; only evals read it."""
    return _env_path("NBA_TRUTH_DIR", REPO_ROOT / "warehouse" / "data" / "truth")


def duckdb_path() -> Path:
    return _env_path("NBA_DUCKDB_PATH", DBT_DIR / "warehouse.duckdb")


def outbox_dir() -> Path:
    return _env_path("NBA_OUTBOX_DIR", REPO_ROOT / "outbox")


def bi_dir() -> Path:
    return _env_path("NBA_BI_DIR", REPO_ROOT / "bi")


def reports_dir() -> Path:
    return _env_path("NBA_REPORTS_DIR", REPO_ROOT / "reports")


def cache_dir() -> Path:
    """The LLM decision cache (SQLite) and other re-creatable caches."""
    return _env_path("NBA_CACHE_DIR", REPO_ROOT / ".cache")


def models_dir() -> Path:
    """Learned models, one folder per version (agent/learned)."""
    return _env_path("NBA_MODELS_DIR", REPO_ROOT / "warehouse" / "models")
