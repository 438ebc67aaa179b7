"""Sources by mapping (issue 31 item 2): the raw contract states what the staging models read, the
generator writes through it, a team's renamed tables map onto it and decide exactly as the demo
does, and each broken mapping is named in one line that says which column and how to fix it."""

from __future__ import annotations

import copy
import os
import re
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from testing.demo_warehouse import DemoWarehouse
from warehouse import build, generate, raw_contract, sources
from warehouse.cli import main as warehouse_main

ROOT = Path(__file__).resolve().parents[2]
STAGING = ROOT / "warehouse" / "dbt" / "models" / "staging"
_CAST = re.compile(r"\bcast\((\w+) as ", re.IGNORECASE)


def test_contract_is_what_the_staging_models_read() -> None:
    contract = raw_contract.load_contract()
    declared = yaml.safe_load((STAGING / "_sources.yml").read_text())["sources"][0]["tables"]
    assert set(contract) == {t["name"] for t in declared}
    for table in contract.values():
        sql = (STAGING / f"{table.read_by}.sql").read_text()
        assert f"source('raw', '{table.name}')" in sql
        assert set(_CAST.findall(sql)) == set(table.column_names), table.name
    assert set(generate.RAW_TABLES) == set(contract)


def test_generator_writes_through_the_contract(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    generate.generate(generate.GenerateConfig(customers=200), out=raw, truth_out=tmp_path / "truth")
    assert sources.check(sources.identity_mapping(raw)) == []
    for name, table in raw_contract.load_contract().items():
        assert pq.read_schema(raw / f"{name}.parquet").names == table.column_names
    # ... and refuses to write a table off the contract
    orders = pq.read_table(raw / "orders.parquet")
    with pytest.raises(ValueError, match=r"orders\.amount: missing"):
        raw_contract.conform({"orders": orders.drop_columns(["amount"])})
    as_text = orders.set_column(5, "amount", pa.array([str(v) for v in orders.column("amount").to_pylist()]))
    with pytest.raises(ValueError, match=r"orders\.amount: is string \(the contract wants double\)"):
        raw_contract.conform({"orders": as_text})


def test_docs_show_the_contract() -> None:
    page = (ROOT / "docs" / "sources.md").read_text()
    assert raw_contract.markdown() in page, "regenerate docs/sources.md's contract section (see the page)"
    assert "docs/sources.md" in (ROOT / "README.md").read_text()


# --- a renamed copy of the demo data, and its mapping ------------------------------------------------


def renamed_copy(raw: Path, dest: Path) -> Path:
    """Every raw table under another file name with every column prefixed `u_`: customers as a table
    of an attached DuckDB file, orders split over two Parquet files (a glob), generator_meta as
    constant expressions, and e-mail upper-cased (staging lower-cases it). Returns the mapping file."""
    dest.mkdir(parents=True)
    mapping: dict = {"version": 1, "attach": {"crm": "crm.duckdb"}, "tables": {}}
    with duckdb.connect(str(dest / "crm.duckdb")) as con:
        for name, contract in raw_contract.load_contract().items():
            table = pq.read_table(raw / f"{name}.parquet")
            table = table.rename_columns([f"u_{n}" for n in table.column_names])
            columns = {n: f"u_{n}" for n in contract.column_names}
            spec: dict = {}
            if name == "customers":
                con.register("clients_arrow", table)
                con.execute("create table clients as select * from clients_arrow")
                spec["table"] = "crm.main.clients"
                columns["email"] = "upper(u_email)"
            elif name == "generator_meta":
                meta = table.to_pylist()[0]
                columns = {
                    "seed": str(meta["u_seed"]),
                    "customers": str(meta["u_customers"]),
                    "as_of_date": f"date '{meta['u_as_of_date']}'",
                }
            elif name == "orders":
                (dest / "shop_orders").mkdir()
                half = table.num_rows // 2
                pq.write_table(table.slice(0, half), dest / "shop_orders" / "part-0.parquet")
                pq.write_table(table.slice(half), dest / "shop_orders" / "part-1.parquet")
                spec["parquet"] = "shop_orders/*.parquet"
            else:
                pq.write_table(table, dest / f"export_{name}.parquet")
                spec["parquet"] = f"export_{name}.parquet"
            mapping["tables"][name] = {**spec, "columns": columns}
    path = dest / "sources.yml"
    path.write_text(yaml.safe_dump(mapping, sort_keys=False))
    return path


@pytest.fixture
def user_data(small_warehouse: DemoWarehouse, tmp_path: Path) -> Path:
    return renamed_copy(small_warehouse.raw_dir, tmp_path / "user")


def _with(mapping: Path, change) -> Path:
    data = yaml.safe_load(mapping.read_text())
    change(data["tables"], mapping.parent)
    broken = mapping.with_name("broken.yml")
    broken.write_text(yaml.safe_dump(copy.deepcopy(data)))
    return broken


def _drop_column(tables: dict, folder: Path) -> None:
    table = pq.read_table(folder / "export_web_events.parquet").drop_columns(["u_session_id"])
    pq.write_table(table, folder / "web_no_session.parquet")
    tables["web_events"]["parquet"] = "web_no_session.parquet"


def _price_as_text(tables: dict, folder: Path) -> None:
    table = pq.read_table(folder / "export_products.parquet")
    text = pa.array([f"{v:.2f}" for v in table.column("u_list_price").to_pylist()])
    pq.write_table(table.set_column(3, "u_list_price", text), folder / "products_text.parquet")
    tables["products"]["parquet"] = "products_text.parquet"


BROKEN = {
    "missing column": (_drop_column, "web_events.session_id", "does not have"),
    "wrong type": (_price_as_text, "products.list_price", "is VARCHAR, not double"),
    "missing table": (
        lambda t, f: t["order_items"].update(parquet="lines_*.parquet"),
        "order_items",
        "matches no file",
    ),
    "nonexistent user column": (
        lambda t, f: t["orders"]["columns"].update(amount="u_total"),
        "orders.amount",
        "mapped to column u_total",
    ),
    "bad expression": (
        lambda t, f: t["nps_responses"]["columns"].update(score="u_score +* 1"),
        "nps_responses.score",
        "expression 'u_score +* 1' fails",
    ),
}


def test_the_renamed_copy_passes_the_check(user_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert warehouse_main(["check-sources", "--mapping", str(user_data)]) == 0
    assert "sources match the raw contract: 11 tables" in capsys.readouterr().out


@pytest.mark.parametrize("case", list(BROKEN))
def test_each_broken_mapping_gets_one_line_naming_the_column(
    user_data: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    change, names, says = BROKEN[case]
    broken = _with(user_data, change)
    assert warehouse_main(["check-sources", "--mapping", str(broken)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith(f"nba-warehouse check-sources: {names}")
    assert says in line and str(broken) in line  # what is wrong, and the file the fix goes in
    if "." in names:
        table, column = names.split(".")
        assert f"tables.{table}.columns.{column}" in line  # the key to set
    if case == "wrong type":
        assert "cast(u_list_price as double)" in line


def test_the_build_checks_first_and_stops_before_dbt(
    user_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "never.duckdb"
    monkeypatch.setenv("NBA_DUCKDB_PATH", str(db))
    monkeypatch.setenv("NBA_SOURCES__DIR", str(tmp_path / "mapped"))
    broken = _with(user_data, BROKEN["nonexistent user column"][0])
    with pytest.raises(sources.SourcesInvalid) as err:
        build.build(mapping=broken)
    assert err.value.problems[0].startswith("orders.amount")
    assert not db.exists() and not (tmp_path / "mapped").exists()


def test_without_a_mapping_the_build_checks_the_raw_files(
    small_warehouse: DemoWarehouse,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(small_warehouse.raw_dir, raw)
    customers = pq.read_table(raw / "customers.parquet").drop_columns(["email"])
    pq.write_table(customers, raw / "customers.parquet")
    monkeypatch.setenv("NBA_RAW_DIR", str(raw))
    monkeypatch.setenv("NBA_DUCKDB_PATH", str(tmp_path / "never.duckdb"))
    assert warehouse_main(["build"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("nba-warehouse build: customers.email (string, Email address")
    assert f"no column email in {raw / 'customers.parquet'}" in line and "MAPPING=" in line
    assert not (tmp_path / "never.duckdb").exists()


@pytest.fixture
def fresh_raw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The generator's raw folder (200 customers), NBA_RAW_DIR pointing at it, no warehouse file."""
    raw = tmp_path / "raw"
    generate.generate(generate.GenerateConfig(customers=200), out=raw, truth_out=tmp_path / "truth")
    monkeypatch.setenv("NBA_RAW_DIR", str(raw))
    monkeypatch.setenv("NBA_DUCKDB_PATH", str(tmp_path / "never.duckdb"))
    return raw


@pytest.mark.parametrize(
    ("damage", "says"),
    [("{not json", "not JSON"), ("[1, 2]", "(a JSON object)"), ('{"seed": 42}', "(no customers, as_of)")],
)
def test_check_sources_refuses_a_damaged_meta_file_in_the_build_s_own_line(
    fresh_raw: Path, damage: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    meta = fresh_raw / generate.META_FILE
    meta.write_text(damage)
    assert warehouse_main(["check-sources"]) == 2
    (checked,) = capsys.readouterr().err.splitlines()
    assert warehouse_main(["build"]) == 2  # refused before dbt: nothing is generated or built
    (built,) = capsys.readouterr().err.splitlines()
    prefix = "nba-warehouse check-sources: "
    assert checked.startswith(prefix) and checked.removeprefix(prefix) == built.removeprefix(
        "nba-warehouse build: "
    )
    assert str(meta) in checked and says in checked and "make seed" in checked
    assert meta.read_text() == damage


def test_check_sources_passes_the_intact_raw_folder(
    fresh_raw: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert warehouse_main(["check-sources"]) == 0
    assert "sources match the raw contract: 11 tables (raw files" in capsys.readouterr().out


def _rules_decisions(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    from activation.run import run_activation
    from activation.settings import ActivateSettings
    from core.config import load_settings

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    run_activation(load_settings(ActivateSettings, mode="rules", segment="all", dry_run=True))
    with duckdb.connect(os.environ["NBA_DUCKDB_PATH"], read_only=True) as con:
        return con.execute(
            "select decision_id, as_of, customer_id, segment, arm, status, reasons, channel, template_id, "
            "discount_pct, subject, message, policy from ops.decision_log order by decision_id"
        ).fetchall()


def test_mapped_copy_builds_and_decides_like_the_demo(
    small_env: DemoWarehouse, user_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = _rules_decisions({}, monkeypatch)
    mapped = tmp_path / "mapped_wh"
    env = {
        "NBA_SOURCES__MAPPING": str(user_data),
        "NBA_SOURCES__DIR": str(mapped / "mapped"),
        "NBA_RAW_DIR": str(mapped / "no-raw-data-here"),  # nothing generated: the mapping feeds dbt
        "NBA_DUCKDB_PATH": str(mapped / "warehouse.duckdb"),
        "DBT_TARGET_PATH": str(mapped / "target"),
        "DBT_LOG_PATH": str(mapped / "logs"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    build.build()
    assert not (mapped / "no-raw-data-here").exists()
    for name, table in raw_contract.load_contract().items():  # dbt read the mapped files
        assert pq.read_schema(mapped / "mapped" / f"{name}.parquet").names == table.column_names
    decided = _rules_decisions(env, monkeypatch)
    assert len(demo) > 30 and {d[5] for d in demo} >= {"send", "holdout"}
    assert decided == demo
