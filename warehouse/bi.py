"""BI exports: dim_customer, customer 360 and segment scores as CSV + Parquet under bi/.

Personal columns stay out by default: every column the dbt project tags `contains_pii` (names,
email, phone, address) or `free_text` (customers' comments) is left out unless asked for
(`include_pii=True`: `nba-warehouse bi --include-pii`, `make bi BI_INCLUDE_PII=1`). A column the
project does not declare is refused: nobody can vouch for what it holds. Every file is written to a
temp directory first and renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from warehouse.access import reading
from warehouse.build import ensure_warehouse
from warehouse.errors import BadSetting, WarehouseError
from warehouse.model_meta import model_columns
from warehouse.ownership import check_dir, owned_dir

BI_TABLES = ("dim_customer", "mart_marketing__customer_360", "mart_marketing__segment_scores")
_TRUE, _FALSE = ("1", "true", "yes"), ("", "0", "false", "no")


@dataclass(frozen=True)
class BiExport:
    files: list[Path]
    left_out: dict[str, list[str]]  # table -> personal columns not exported


def include_pii_from_env() -> bool:
    """BI_INCLUDE_PII (the make variable) or NBA_BI_INCLUDE_PII: 1/true/yes or 0/false/no."""
    for var in ("NBA_BI_INCLUDE_PII", "BI_INCLUDE_PII"):
        value = os.environ.get(var)
        if value is None:
            continue
        if value.strip().lower() in _TRUE:
            return True
        if value.strip().lower() in _FALSE:
            return False
        raise BadSetting(f"{var}={value!r} is not a flag: use 1 to include personal columns, 0 not to")
    return False


def exported_columns(table: str, present: list[str], include_pii: bool) -> tuple[list[str], list[str]]:
    """(columns to export, personal columns left out) of `table`, in the table's order."""
    declared = model_columns(table)
    unknown = [c for c in present if c not in declared]
    if unknown:
        raise WarehouseError(
            f"{table} has columns the dbt project does not declare ({', '.join(unknown)}): declare them "
            f"in its .yml (with config.meta.contains_pii where personal) before exporting"
        )
    left_out = [] if include_pii else [c for c in present if declared[c].personal]
    return [c for c in present if c not in left_out], left_out


def export_bi(out_dir: Path | None = None, include_pii: bool | None = None) -> BiExport:
    """Export the BI tables to CSV and Parquet, without personal columns unless include_pii."""
    include = include_pii_from_env() if include_pii is None else include_pii
    if out_dir is None:  # the configured folder: refused if it is not ours (its files would be replaced)
        check_dir("bi")
    db_path = ensure_warehouse()  # refuses a warehouse that is not ours before the folder is created
    out_dir = owned_dir("bi") if out_dir is None else out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    left_out: dict[str, list[str]] = {}
    tmp = Path(tempfile.mkdtemp(prefix=".bi-", dir=out_dir))
    try:
        with reading(db_path) as con:
            for table in BI_TABLES:
                present = [
                    r[0]
                    for r in con.execute(
                        "select column_name from information_schema.columns where table_schema = 'main' "
                        "and table_name = ? order by ordinal_position",
                        [table],
                    ).fetchall()
                ]
                columns, dropped = exported_columns(table, present, include)
                if dropped:
                    left_out[table] = dropped
                select = ", ".join(f'"{c}"' for c in columns)
                for ext, options in (
                    ("parquet", "format parquet, compression zstd"),
                    ("csv", "format csv, header true"),
                ):
                    target = str(tmp / f"{table}.{ext}").replace("'", "''")
                    con.execute(
                        f"copy (select {select} from main.{table} order by 1) to '{target}' ({options})"
                    )
        for staged in sorted(tmp.iterdir()):
            final = out_dir / staged.name
            os.replace(staged, final)
            written.append(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return BiExport(files=written, left_out=left_out)
