"""Personal data (issue 16): tagged in the dbt project, kept out of the BI files unless asked, and
nothing tagged reaches a prompt but what the activation exposure allows (first_name, and the quoted
NPS comment). Also: every model and every column of the marts Python or BI read is described."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from agent.context import _CONTEXT_SQL
from testing.demo_warehouse import DemoWarehouse
from warehouse import cli, paths
from warehouse.bi import BI_TABLES, export_bi, exported_columns
from warehouse.errors import WarehouseError
from warehouse.model_meta import exposures, model_columns, model_descriptions

READ_BY_PYTHON_OR_BI = (
    "dim_customer",
    "mart_marketing__customer_360",
    "mart_marketing__segment_scores",
    "mart_marketing__campaign_history",
)
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
PHONE = re.compile(r"\+\d{8,}")


def context_columns() -> list[tuple[str, str]]:
    """(model, column) of every column in the prompt's select list (agent/context.py)."""
    select, rest = _CONTEXT_SQL.split("select", 1)[1].split("\nfrom ", 1)
    aliases = dict((a, m) for m, a in re.findall(r"main\.(\w+) as (\w+)", rest))
    items = [i.strip() for i in select.replace("\n", " ").split(",") if i.strip()]
    out = []
    for item in items:
        match = re.fullmatch(r"(\w+)\.(\w+)", item)
        assert match, f"unqualified or computed prompt column {item!r}: qualify it so it can be checked"
        out.append((aliases[match.group(1)], match.group(2)))
    return out


def test_the_prompt_carries_no_personal_column_but_those_the_exposure_allows() -> None:
    allowed = exposures()["activation_run"]
    cols = context_columns()
    assert len(cols) >= 25 and ("mart_marketing__customer_360", "first_name") in cols
    for model, name in cols:
        declared = model_columns(model)
        assert name in declared, f"{model}.{name} reaches the prompt but is not declared in the dbt project"
        col = declared[name]
        assert not col.contains_pii or name in allowed.allowed_pii, f"{model}.{name} is personal data"
        assert not col.free_text or name in allowed.allowed_free_text, f"{model}.{name} is free text"
    assert allowed.allowed_pii == {"first_name"}  # the one personal token of the design


def test_personal_columns_are_tagged_where_they_are_born_and_where_they_land() -> None:
    for model in ("stg_raw__customers", "dim_customer"):
        tagged = {c.name for c in model_columns(model).values() if c.contains_pii}
        assert tagged == {"first_name", "last_name", "email", "phone", "address"}, model
    assert model_columns("stg_raw__suppressions")["email"].contains_pii
    assert model_columns("mart_marketing__customer_360")["first_name"].contains_pii
    assert model_columns("mart_marketing__customer_360")["latest_nps_comment"].free_text
    assert model_columns("stg_raw__nps_responses")["comment"].free_text


def test_bi_export_leaves_personal_columns_out_by_default(
    demo_warehouse_env: DemoWarehouse, tmp_path: Path
) -> None:
    result = export_bi(tmp_path / "bi")
    assert sorted(p.name for p in result.files) == sorted(
        f"{t}.{e}" for t in BI_TABLES for e in ("csv", "parquet")
    )
    assert result.left_out["dim_customer"] == ["first_name", "last_name", "email", "phone", "address"]
    assert result.left_out["mart_marketing__customer_360"] == ["first_name", "latest_nps_comment"]
    for table in BI_TABLES:
        declared = model_columns(table)
        text = (tmp_path / "bi" / f"{table}.csv").read_text(encoding="utf-8")
        header = next(csv.reader([text.splitlines()[0]]))
        assert header == pq.read_schema(tmp_path / "bi" / f"{table}.parquet").names
        assert not [c for c in header if declared[c].personal], table
        assert not EMAIL.search(text) and not PHONE.search(text), f"{table}.csv carries contact details"
    with open(tmp_path / "bi" / "dim_customer.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == demo_warehouse_env.customers and {"customer_id", "country", "consent_email"} <= set(
        rows[0]
    )


def test_bi_export_includes_them_when_asked(
    demo_warehouse_env: DemoWarehouse, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("BI_INCLUDE_PII", "1")
    result = export_bi(tmp_path / "bi")
    assert result.left_out == {}
    header = (tmp_path / "bi" / "dim_customer.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert {"email", "phone", "address", "first_name"} <= set(header)
    assert EMAIL.search((tmp_path / "bi" / "dim_customer.csv").read_text(encoding="utf-8"))


def test_cli_bi_says_what_it_left_out_and_refuses_a_bad_flag(
    demo_warehouse_env: DemoWarehouse, tmp_path: Path, capsys, monkeypatch
) -> None:
    assert cli.main(["bi", "--out", str(tmp_path / "x")]) == 0
    out = capsys.readouterr().out
    assert "mart_marketing__customer_360.parquet" in out
    assert "left out personal columns: dim_customer.first_name" in out and "BI_INCLUDE_PII=1" in out
    monkeypatch.setenv("BI_INCLUDE_PII", "sure")
    assert cli.main(["bi", "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "BI_INCLUDE_PII='sure'" in err


def test_a_column_the_project_does_not_declare_is_never_exported() -> None:
    with pytest.raises(WarehouseError, match="ssn"):
        exported_columns("dim_customer", ["customer_id", "ssn"], include_pii=False)


def test_every_model_is_described_and_every_column_python_or_bi_reads_is_declared_and_described(
    demo_warehouse: DemoWarehouse,
) -> None:
    sql_models = {p.stem for p in (paths.DBT_DIR / "models").rglob("*.sql")}
    descriptions = model_descriptions()
    assert sql_models <= set(descriptions), sql_models - set(descriptions)
    assert all(descriptions[m] for m in sql_models), [m for m in sql_models if not descriptions[m]]
    with duckdb.connect(str(demo_warehouse.duckdb_path), read_only=True) as con:
        for model in READ_BY_PYTHON_OR_BI:
            built = [
                r[0]
                for r in con.execute(
                    "select column_name from information_schema.columns where table_name = ? "
                    "order by ordinal_position",
                    [model],
                ).fetchall()
            ]
            declared = model_columns(model)
            assert built == list(declared), model
            assert not [c for c in declared.values() if not c.description], model


def test_staging_models_follow_the_source_entity_naming() -> None:
    staging = sorted(p.stem for p in (paths.DBT_DIR / "models" / "staging").glob("*.sql"))
    assert staging and all(re.fullmatch(r"stg_(raw|ops)__[a-z_]+s", name) for name in staging), staging
