"""Where things live. Every path is overridable by one env variable, read at call time so tests can
point a whole run at a temporary directory.

Two kinds of path. What the product reads and never writes (the dbt project, its seeds and macros,
the prompts) ships inside the packages: `DBT_DIR` is beside this module in a clone and in an
installed wheel alike. What a run writes (raw data, the warehouse file, dbt's target and logs, the
outbox, reports, caches, learned models) goes under `home()`: the clone's root when the code runs
from a clone (today's layout, unchanged), otherwise the current directory, or NBA_HOME when set. So
an installed package never writes into site-packages, and the relative layout is the same everywhere:
`<home>/warehouse/dbt/warehouse.duckdb`, `<home>/outbox`, ...
"""

from __future__ import annotations

import os
from pathlib import Path

# The folder holding the project's packages: the clone, or site-packages for an installed wheel.
PACKAGES_ROOT = Path(__file__).resolve().parent.parent
DBT_DIR = Path(__file__).resolve().parent / "dbt"


def in_clone() -> bool:
    """True when the packages are the clone's own files (a source checkout or an editable install)."""
    return (PACKAGES_ROOT / "pyproject.toml").is_file() and (PACKAGES_ROOT / "warehouse" / "dbt").is_dir()


def home() -> Path:
    """Where a run writes by default: NBA_HOME, else the clone's root, else the current directory."""
    value = os.environ.get("NBA_HOME")
    if value:
        return Path(value).resolve()
    return PACKAGES_ROOT if in_clone() else Path.cwd().resolve()


def _env_path(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    return Path(value).resolve() if value else default


def raw_dir() -> Path:
    """Generated raw data (Parquet), read by dbt sources."""
    return _env_path("NBA_RAW_DIR", home() / "warehouse" / "data" / "raw")


def truth_dir() -> Path:
    """Ground truth of the synthetic response model. Never read by a policy; only evals read it."""
    return _env_path("NBA_TRUTH_DIR", home() / "warehouse" / "data" / "truth")


def default_duckdb_path() -> Path:
    return home() / "warehouse" / "dbt" / "warehouse.duckdb"


def duckdb_path() -> Path:
    return _env_path("NBA_DUCKDB_PATH", default_duckdb_path())


def dbt_target_dir() -> Path:
    """dbt's target folder (manifest, run results, docs) unless DBT_TARGET_PATH says otherwise
    (warehouse.dbt_runner passes that variable to dbt as given)."""
    return home() / "warehouse" / "dbt" / "target"


def dbt_log_dir() -> Path:
    """dbt's log folder unless DBT_LOG_PATH says otherwise."""
    return home() / "warehouse" / "dbt" / "logs"


def outbox_dir() -> Path:
    return _env_path("NBA_OUTBOX_DIR", home() / "outbox")


def bi_dir() -> Path:
    return _env_path("NBA_BI_DIR", home() / "bi")


def reports_dir() -> Path:
    return _env_path("NBA_REPORTS_DIR", home() / "reports")


def cache_dir() -> Path:
    """The LLM decision cache (SQLite) and other re-creatable caches."""
    return _env_path("NBA_CACHE_DIR", home() / ".cache")


def models_dir() -> Path:
    """Learned models, one folder per version (agent/learned)."""
    return _env_path("NBA_MODELS_DIR", home() / "warehouse" / "models")


# --- sources by mapping (warehouse/sources.py): here, so a caller without the data stack (the Airflow
# DAG file) can name the folder dbt reads ---------------------------------------------------------

SOURCES_MAPPING_ENV = "NBA_SOURCES__MAPPING"
SOURCES_DIR_ENV = "NBA_SOURCES__DIR"


def configured_mapping() -> Path | None:
    """The mapping file NBA_SOURCES__MAPPING names, or None (the raw Parquet files are read as they are)."""
    value = os.environ.get(SOURCES_MAPPING_ENV, "").strip()
    return Path(value).resolve() if value else None


def mapped_dir() -> Path:
    """Where the mapped tables are written for dbt: NBA_SOURCES__DIR, else `mapped/` beside the raw folder."""
    value = os.environ.get(SOURCES_DIR_ENV, "").strip()
    return Path(value).resolve() if value else raw_dir().parent / "mapped"


def read_dir() -> Path:
    """The folder dbt's raw sources read: the mapped tables with a mapping, else the raw folder."""
    return mapped_dir() if configured_mapping() is not None else raw_dir()
