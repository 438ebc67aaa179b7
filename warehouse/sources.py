"""A team's own tables as the warehouse's raw sources, through a mapping file.

The raw contract (warehouse/raw_contract.yml) names every table and column the staging models
read. A mapping file (`NBA_SOURCES__MAPPING`, `make ... MAPPING=sources.yml`) names, for each
contract table, the team's table (a Parquet file or glob, or a table of an attached DuckDB
database) and, for each contract column, the team's column or an SQL expression over its columns
(a column left out is read under its contract name):

    version: 1
    attach: {shop: shop.duckdb}           # DuckDB files, attached read-only under these names
    tables:
      customers:
        parquet: exports/clients_*.parquet  # relative to the mapping file
        columns: {customer_id: client_ref, email: lower(mail)}
      orders:
        table: shop.main.orders
      generator_meta:                     # neither parquet nor table: one row of expressions
        columns: {seed: "0", customers: "0", as_of_date: "current_date"}

`check` reports every missing or mistyped column in one line each (contract table and column, the
team's table and column, and the fix); `materialize` writes the mapped tables, cast to the
contract's types, as the Parquet files the staging models read (`NBA_SOURCES__DIR`, by default
`mapped/` beside NBA_RAW_DIR), so the dbt project is the same for every team. Without a mapping the
same check runs on the raw Parquet files themselves (the generator's output)."""

from __future__ import annotations

import glob
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import yaml  # type: ignore[import-untyped]  # no stubs installed; safe_load only

from core.errors import inline
from warehouse import paths
from warehouse.errors import WarehouseError
from warehouse.paths import configured_mapping, mapped_dir
from warehouse.raw_contract import SQL_TYPES, ContractTable, accepts, load_contract

MAPPING_ENV = "NBA_SOURCES__MAPPING"
DIR_ENV = "NBA_SOURCES__DIR"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHOWN_COLUMNS = 12


class SourcesInvalid(WarehouseError):
    """The sources do not meet the raw contract: one line per problem (the message's lines)."""

    exit_code = 2

    def __init__(self, problems: list[str]):
        problems = [inline(p) for p in problems]  # a path with a line break is still one problem's line
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class TableMapping:
    name: str
    parquet: str | None = None  # a path or glob, absolute
    table: str | None = None  # a table of an attached database (or any relation DuckDB can name)
    columns: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.parquet or self.table or "(constant expressions)"


@dataclass(frozen=True)
class SourceMapping:
    where: str  # the mapping file, or the raw folder for the generator's own files
    tables: dict[str, TableMapping]
    attach: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()  # what is wrong with the mapping file itself
    identity: bool = False

    def fix_for(self, key: str) -> str:
        """Where a fix goes: the mapping file's key, or (no mapping) a mapping to write."""
        if self.identity:
            return "write it as the generator does (make seed), or map your own tables (MAPPING=, docs/sources.md)"
        return f"set {key} in {self.where}"


def identity_mapping(raw_dir: Path | None = None) -> SourceMapping:
    """The generator's files as they are: `<raw>/<table>.parquet`, every column under its own name."""
    raw = raw_dir or paths.raw_dir()
    tables = {n: TableMapping(n, parquet=str(raw / f"{n}.parquet")) for n in load_contract()}
    return SourceMapping(str(raw), tables, identity=True)


def load_mapping(path: Path) -> SourceMapping:
    """Read a mapping file; what is wrong with its shape is kept as problems (reported with the rest)."""
    if not path.is_file():
        raise SourcesInvalid([f"mapping file {inline(path)} does not exist: fix {MAPPING_ENV} (or MAPPING=)"])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SourcesInvalid(
            [f"mapping file {inline(path)} is not YAML ({str(exc).splitlines()[0]})"]
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("tables"), dict):
        raise SourcesInvalid([f"mapping file {path}: no `tables:` section (docs/sources.md shows one)"])
    base = path.parent
    attach = {str(k): str((base / str(v)).resolve()) for k, v in (data.get("attach") or {}).items()}
    contract = load_contract()
    problems: list[str] = []
    tables: dict[str, TableMapping] = {}
    for name, spec in data["tables"].items():
        if name not in contract:
            problems.append(f"{name}: not a table of the raw contract (its tables: {', '.join(contract)}): "
                            f"rename or remove tables.{name} in {path}")  # fmt: skip
            continue
        tables[name], table_problems = _table_mapping(name, spec or {}, base, path, contract[name])
        problems += table_problems
    return SourceMapping(str(path), tables, attach, tuple(problems))


def _table_mapping(
    name: str, spec: dict, base: Path, path: Path, contract: ContractTable
) -> tuple[TableMapping, list[str]]:
    problems: list[str] = []
    columns = {str(k): str(v) for k, v in (spec.get("columns") or {}).items()}
    for col in columns:
        if col not in contract.column_names:
            problems.append(f"{name}.{col}: not a column of the raw contract's {name} "
                            f"({', '.join(contract.column_names)}): fix tables.{name}.columns in {path}")  # fmt: skip
    if spec.get("parquet") and spec.get("table"):
        problems.append(f"{name}: both parquet and table given: keep one in tables.{name} of {path}")
    parquet = str(base / str(spec["parquet"])) if spec.get("parquet") else None
    mapping = TableMapping(name, parquet, str(spec["table"]) if spec.get("table") else None, columns)
    return mapping, problems


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def connect(mapping: SourceMapping) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the mapping's databases attached read-only."""
    con = duckdb.connect()
    for alias, db in mapping.attach.items():
        if not Path(db).is_file():
            raise SourcesInvalid(
                [f"attach.{alias}: {db} does not exist: fix attach.{alias} in {mapping.where}"]
            )
        con.execute(f'attach {_quote(db)} as "{alias}" (read_only)')
    return con


def _relation(t: TableMapping) -> str | None:
    if t.parquet:
        return f"read_parquet({_quote(t.parquet)})"
    return t.table


def _user_columns(con: duckdb.DuckDBPyConnection, t: TableMapping) -> dict[str, tuple[str, str]] | str:
    """The user's table's columns {lower name: (name, type)}, or why it cannot be read."""
    relation = _relation(t)
    if relation is None:
        return {}
    if t.parquet and not glob.glob(t.parquet, recursive=True):
        return "matches no file"
    try:
        rows = con.execute(f"describe select * from {relation}").fetchall()
    except duckdb.Error as exc:
        return f"cannot be read ({_first_line(exc)})"
    return {r[0].lower(): (r[0], r[1]) for r in rows}


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def check(mapping: SourceMapping) -> list[str]:
    """Every problem of the sources against the raw contract, one line each (empty: they match)."""
    if mapping.identity and not any(Path(t.parquet or "").is_file() for t in mapping.tables.values()):
        return [f"no raw data under {mapping.where}: generate the demo data (make seed), "
                "or map your own tables (MAPPING=sources.yml, docs/sources.md)"]  # fmt: skip
    problems = list(mapping.problems)
    con = connect(mapping)
    try:
        for name, contract in load_contract().items():
            t = mapping.tables.get(name)
            if t is None:
                problems.append(f"{name}: no table mapped (the contract's {name}: {contract.description}): "
                                f"add tables.{name} with parquet: or table: to {mapping.where}")  # fmt: skip
                continue
            problems += _check_table(con, mapping, t, contract)
    finally:
        con.close()
    return problems


def _check_table(
    con: duckdb.DuckDBPyConnection, mapping: SourceMapping, t: TableMapping, contract: ContractTable
) -> list[str]:
    found = _user_columns(con, t)
    key = "parquet" if t.parquet else "table"
    if isinstance(found, str):
        return [f"{t.name}: the table {t.label} {found}: {mapping.fix_for(f'tables.{t.name}.{key}')}"]
    problems = []
    for col in contract.columns:
        expr = t.columns.get(col.name)
        fix = f"tables.{t.name}.columns.{col.name}"
        head = f"{t.name}.{col.name} ({col.type}, {col.description.rstrip('.')})"
        shown = ", ".join(n for n, _ in list(found.values())[:_SHOWN_COLUMNS])
        shown += ", ..." if len(found) > _SHOWN_COLUMNS else ""
        if expr is None and _relation(t) is None:
            problems.append(f"{head}: no expression given for {t.label}: {mapping.fix_for(fix)}")
        elif expr is None and col.name.lower() not in found:
            problems.append(f"{head}: no column {col.name} in {t.label} (it has: {shown}): "
                            f"{mapping.fix_for(fix + ': <your column or an SQL expression>')}")  # fmt: skip
        elif expr is not None and _IDENTIFIER.match(expr) and expr.lower() not in found and _relation(t):
            problems.append(f"{head}: mapped to column {expr}, which {t.label} does not have "
                            f"(it has: {shown}): {mapping.fix_for(fix)}")  # fmt: skip
        else:
            problems += _check_type(con, mapping, t, col.name, col.type, expr or col.name, head, fix)
    return problems


def _check_type(
    con: duckdb.DuckDBPyConnection,
    mapping: SourceMapping,
    t: TableMapping,
    column: str,
    contract_type: str,
    expr: str,
    head: str,
    fix: str,
) -> list[str]:
    relation = _relation(t)
    sql = f"describe select ({expr}) as v" + (f" from {relation}" if relation else "")
    what = f"column {expr}" if _IDENTIFIER.match(expr) else f"expression {expr!r}"
    try:
        got = con.execute(sql).fetchall()[0][1]
    except duckdb.Error as exc:
        return [f"{head}: {what} fails on {t.label} ({_first_line(exc)}): {mapping.fix_for(fix)}"]
    if accepts(contract_type, got):
        return []
    cast = f"cast({expr} as {SQL_TYPES[contract_type]})"
    return [
        f"{head}: {what} of {t.label} is {got}, not {contract_type}: {mapping.fix_for(f'{fix}: {cast!r}')}"
    ]


def select_sql(t: TableMapping, contract: ContractTable) -> str:
    """The SELECT that reads the user's table as the contract's table (columns cast to its types)."""
    cols = ",\n  ".join(
        f'cast(({t.columns.get(c.name, c.name)}) as {SQL_TYPES[c.type]}) as "{c.name}"'
        for c in contract.columns
    )
    relation = _relation(t)
    return f"select\n  {cols}" + (f"\nfrom {relation}" if relation else "")


def materialize(mapping: SourceMapping, out: Path | None = None) -> Path:
    """Write every mapped table as `<out>/<table>.parquet` with the contract's columns and types, into
    a temp folder swapped in at the end (dbt never reads a half-written set); return the folder."""
    from warehouse.ownership import FOLDER_MARK, claim_data_dir

    out = out or mapped_dir()
    tables = {f"{name}.parquet" for name in load_contract()}
    claim_data_dir(out, paths.SOURCES_DIR_ENV, lambda d: {p.name for p in d.iterdir()} <= tables)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    con = connect(mapping)
    try:
        for name, contract in load_contract().items():
            target = _quote(str(tmp / f"{name}.parquet"))
            try:
                con.execute(f"copy ({select_sql(mapping.tables[name], contract)}) to {target} "
                            "(format parquet, compression zstd)")  # fmt: skip
            except duckdb.Error as exc:
                shutil.rmtree(tmp, ignore_errors=True)
                raise SourcesInvalid([f"{name}: reading {mapping.tables[name].label} through the mapping "
                                      f"failed ({_first_line(exc)}): fix tables.{name} in {mapping.where}"]) from None  # fmt: skip
    finally:
        con.close()
    (tmp / FOLDER_MARK).write_text("mapped sources of activate-nba\n", encoding="utf-8")
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return out


def current(mapping_path: Path | None = None) -> SourceMapping:
    """The mapping in force: the file given, else NBA_SOURCES__MAPPING, else the raw files as they are."""
    path = mapping_path or configured_mapping()
    return load_mapping(path) if path else identity_mapping()


def prepare(mapping_path: Path | None = None) -> Path:
    """Check the sources (SourcesInvalid lists every problem) and return the folder dbt reads: the raw
    folder itself without a mapping, the freshly written mapped tables with one."""
    mapping = current(mapping_path)
    problems = check(mapping)
    if problems:
        raise SourcesInvalid(problems)
    if mapping.identity:
        return Path(mapping.where)
    return materialize(mapping)
