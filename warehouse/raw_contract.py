"""The raw contract (warehouse/raw_contract.yml): every table and column the staging models read,
with its type and meaning. One file says what the warehouse needs from its inputs; the generator
writes through it (`conform`), a team's own tables are checked against it through a mapping
(warehouse/sources.py), and docs/sources.md shows it (`markdown`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pyarrow as pa
import yaml  # type: ignore[import-untyped]  # no stubs installed; safe_load only

CONTRACT_FILE = Path(__file__).resolve().with_name("raw_contract.yml")

# The SQL type a contract type is cast to (the Parquet files dbt reads carry exactly these).
SQL_TYPES = {
    "string": "varchar",
    "bigint": "bigint",
    "integer": "integer",
    "double": "double",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}
_INTEGERS = frozenset(
    [
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "UHUGEINT",
    ]
)
_TIMESTAMPS = frozenset(("TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS"))


@dataclass(frozen=True)
class ContractColumn:
    name: str
    type: str
    description: str


@dataclass(frozen=True)
class ContractTable:
    name: str
    read_by: str
    description: str
    columns: tuple[ContractColumn, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


@cache
def load_contract(path: Path = CONTRACT_FILE) -> dict[str, ContractTable]:
    """The contract's tables by name, each with its columns in order."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    tables: dict[str, ContractTable] = {}
    for name, spec in data["tables"].items():
        odd = [f"{name}.{col}" for col, c in spec["columns"].items() if set(c) != {"type", "description"}]
        if odd:
            raise ValueError(f"{path}: {', '.join(odd)} must have exactly a type and a description")
        columns = tuple(
            ContractColumn(col, c["type"], " ".join(str(c["description"]).split()))
            for col, c in spec["columns"].items()
        )
        unknown = [c.type for c in columns if c.type not in SQL_TYPES]
        if unknown:
            raise ValueError(f"{path}: {name} uses unknown types {unknown} (known: {', '.join(SQL_TYPES)})")
        tables[name] = ContractTable(name, spec["read_by"], " ".join(spec["description"].split()), columns)
    return tables


def accepts(contract_type: str, duckdb_type: str) -> bool:
    """Whether a source column of DuckDB type `duckdb_type` can feed a `contract_type` column as is
    (the cast to the contract type cannot change what it means)."""
    t = duckdb_type.upper()
    if contract_type == "string":
        return t == "VARCHAR" or t.startswith("ENUM(")
    if contract_type in ("bigint", "integer"):
        return t in _INTEGERS
    if contract_type == "double":
        return t in _INTEGERS or t in ("FLOAT", "DOUBLE") or t.startswith("DECIMAL")
    if contract_type == "boolean":
        return t == "BOOLEAN"
    if contract_type == "date":
        return t == "DATE"
    return t in _TIMESTAMPS  # timestamp: wall time in UTC, no time zone


def _arrow_ok(contract_type: str, arrow: pa.DataType) -> bool:
    """The exact Arrow type the generator writes for a contract type."""
    if pa.types.is_dictionary(arrow):
        arrow = arrow.value_type
    return {
        "string": pa.types.is_string(arrow) or pa.types.is_large_string(arrow),
        "bigint": arrow == pa.int64(),
        "integer": arrow == pa.int32(),
        "double": arrow == pa.float64(),
        "boolean": pa.types.is_boolean(arrow),
        "date": arrow == pa.date32(),
        "timestamp": pa.types.is_timestamp(arrow) and arrow.tz is None,  # type: ignore[attr-defined]
    }[contract_type]


def arrow_problems(name: str, schema: pa.Schema) -> list[str]:
    """What keeps an Arrow table from being the contract's `name` table, one line each."""
    table = load_contract().get(name)
    if table is None:
        return [f"{name}: not a table of the raw contract ({CONTRACT_FILE.name})"]
    problems = [
        f"{name}.{c.name}: {'missing' if c.name not in schema.names else 'is ' + str(schema.field(c.name).type)}"
        f" (the contract wants {c.type})"
        for c in table.columns
        if c.name not in schema.names or not _arrow_ok(c.type, schema.field(c.name).type)
    ]
    extra = [n for n in schema.names if n not in table.column_names]
    if extra:
        problems.append(f"{name}: columns {extra} are not in the contract")
    elif not problems and schema.names != table.column_names:
        problems.append(f"{name}: columns in another order than the contract's {table.column_names}")
    return problems


def conform(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """`tables` unchanged when every contract table is there with the contract's columns and types;
    otherwise a ValueError listing what differs (the generator writes only what the contract says)."""
    problems = [f"{name}: not written" for name in load_contract() if name not in tables]
    for name, table in tables.items():
        problems += arrow_problems(name, table.schema)
    if problems:
        raise ValueError("raw tables off the raw contract: " + "; ".join(problems))
    return tables


def markdown() -> str:
    """The contract as Markdown: one section per table, a row per column (docs/sources.md)."""
    lines: list[str] = []
    for table in load_contract().values():
        lines += [f"### `{table.name}`", "", f"{table.description} Read by `{table.read_by}`.", ""]
        lines += ["| column | type | meaning |", "| --- | --- | --- |"]
        lines += [f"| `{c.name}` | {c.type} | {c.description.replace('|', '/')} |" for c in table.columns]
        lines.append("")
    return "\n".join(lines)


_START, _END = "<!-- raw contract: start (python -m warehouse.raw_contract) -->", "<!-- raw contract: end -->"


def write_docs(page: Path) -> None:
    """Rewrite the contract section of a docs page (between its two markers) from the contract."""
    text = page.read_text(encoding="utf-8")
    head, rest = text.split(_START, 1)
    _, tail = rest.split(_END, 1)
    page.write_text(f"{head}{_START}\n\n{markdown()}\n{_END}{tail}", encoding="utf-8")


if __name__ == "__main__":  # regenerates docs/sources.md's contract section in a clone
    write_docs(Path(__file__).resolve().parent.parent / "docs" / "sources.md")
