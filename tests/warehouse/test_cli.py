"""The nba-warehouse CLI: BI export, ensure_warehouse, one-line errors."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from testing.demo_warehouse import DemoWarehouse, corrupt_raw_data
from warehouse import build, cli


def test_bi_export_writes_csv_and_parquet_atomically(
    demo_warehouse_env: DemoWarehouse, tmp_path: Path
) -> None:
    out = tmp_path / "bi"
    written = cli.export_bi(out).files
    names = sorted(p.name for p in written)
    assert names == sorted(f"{t}.{ext}" for t in cli.BI_TABLES for ext in ("csv", "parquet"))
    assert sorted(os.listdir(out)) == names  # no temp files left behind
    scores = pq.read_table(out / "mart_marketing__segment_scores.parquet")
    assert scores.num_rows == demo_warehouse_env.customers
    with open(out / "dim_customer.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == demo_warehouse_env.customers and rows[0]["customer_id"] == "C0000001"


def test_cli_bi_subcommand_prints_paths(demo_warehouse_env: DemoWarehouse, tmp_path: Path, capsys) -> None:
    assert cli.main(["bi", "--out", str(tmp_path / "x")]) == 0
    assert "mart_marketing__customer_360.parquet" in capsys.readouterr().out


def test_bi_never_replaces_a_users_files_in_nba_bi_dir(
    demo_warehouse_env: DemoWarehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """NBA_BI_DIR at a user's folder: make bi replaced their dim_customer.csv (exit 0); at a file it
    ended in a FileExistsError traceback. Both are refused in one line (exit 2), left as they were;
    a folder of ours is written again."""
    theirs = tmp_path / "exports"
    theirs.mkdir()
    (theirs / "dim_customer.csv").write_text("their own export\n")
    (theirs / "budget.xlsx").write_text("x")
    monkeypatch.setenv("NBA_BI_DIR", str(theirs))
    assert cli.main(["bi"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "NBA_BI_DIR" in err[0] and "budget.xlsx" in err[0], err
    assert sorted(os.listdir(theirs)) == ["budget.xlsx", "dim_customer.csv"]
    assert (theirs / "dim_customer.csv").read_text() == "their own export\n"
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine\n")
    monkeypatch.setenv("NBA_BI_DIR", str(a_file))
    assert cli.main(["bi"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "NBA_BI_DIR" in err[0] and "is a file" in err[0], err
    assert a_file.read_text() == "mine\n"
    ours = tmp_path / "bi"
    monkeypatch.setenv("NBA_BI_DIR", str(ours))
    assert cli.main(["bi"]) == 0 and cli.main(["bi"]) == 0
    assert (ours / "dim_customer.csv").exists()


def test_ensure_warehouse_is_a_no_op_on_a_built_warehouse(demo_warehouse_env: DemoWarehouse) -> None:
    before = demo_warehouse_env.duckdb_path.stat().st_mtime_ns
    assert build.missing_marts() == []
    assert cli.ensure_warehouse() == demo_warehouse_env.duckdb_path
    assert demo_warehouse_env.duckdb_path.stat().st_mtime_ns == before


def test_missing_marts_reports_everything_for_a_missing_file(tmp_path: Path) -> None:
    assert build.missing_marts(tmp_path / "none.duckdb") == list(build.MART_TABLES)


def test_build_failure_is_one_line_and_exit_1_and_writes_no_warehouse(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    raw = tmp_path / "raw"
    monkeypatch.setenv("NBA_RAW_DIR", str(raw))
    monkeypatch.setenv("NBA_TRUTH_DIR", str(tmp_path / "truth"))
    monkeypatch.setenv("NBA_DUCKDB_PATH", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "logs"))
    assert cli.main(["generate", "--customers", "300"]) == 0
    events = (raw / "web_events.parquet").read_bytes()
    (
        raw / "web_events.parquet"
    ).unlink()  # a source file vanished: the raw contract check names it before dbt
    assert cli.main(["build"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(
        f"nba-warehouse build: web_events: the table {raw / 'web_events.parquet'} matches no file"
    )
    assert "\n" not in err and not (tmp_path / "target" / "run_results.json").exists(), "dbt never started"
    (raw / "web_events.parquet").write_bytes(events)
    corrupt_raw_data(raw)  # the right columns, wrong data: dbt's tests fail the build, in one line
    assert cli.main(["build"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("nba-warehouse build: dbt build failed") and "\n" not in err
    assert "stg_raw__customers" in err and err.endswith("no warehouse was written")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".duckdb")) == []


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["generate", "--customers", "0"], "--customers / CUSTOMERS="),
        (["build", "--seed", "-3"], "--seed / SEED="),
        (["generate", "--seed", "1';touch x;'\nnext line"], "--seed / SEED="),
        (["generate", "--as-of", "notadate"], "--as-of / DATA_AS_OF="),
        (["build", "--wait", "abc"], "--wait"),
        (["generate", "--bogus"], "--bogus"),
    ],
)
def test_invalid_arguments_exit_2_in_one_line_naming_the_flag_and_make_parameter(
    argv: list[str], named: str, capsys
) -> None:
    """make seed SEED=abc: one line naming --seed and SEED= (not argparse's usage block first)."""
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "error:" in err and named in err, err
