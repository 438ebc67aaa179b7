"""The real programs through the real Makefile: a scheduler calling `make` reads the program's own
exit code (0 ok, 1 failed, 2 bad input, 3 partial, 4 busy, 5 refused by the promotion gate), a
hostile value is refused in one line and runs nothing, the origin README's form
(`DISCOUNT_CAP=10 make activate ...`) is honoured; and each problem of a bad file or setting is one
line naming it (a directory or a truncated file as the warehouse, a damaged raw Parquet file, a
destination URL that is not one, LAST=abc)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from run_helpers import ROOT, subprocess_env

from activation.cli import main as cli
from activation.settings import ActivateSettings
from core.config import load_settings
from core.errors import ConfigError
from warehouse import cli as warehouse_cli
from warehouse.dbt_runner import failed_nodes
from warehouse.lock import warehouse_lock

HOSTILE = "1';touch PWNED_1;'\"$(touch PWNED_2)`touch PWNED_3`;$(shell touch PWNED_4)\nü"


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in subprocess_env().items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    return subprocess.run(
        ["make", "-s", *args], cwd=ROOT, env={**base, **(env or {})}, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_a_hostile_value_is_refused_in_one_line_and_runs_nothing(warehouse_copy: Path) -> None:
    proc = make("plan", f"DISCOUNT_CAP={HOSTILE}")
    assert not list(ROOT.glob("PWNED*"))
    assert proc.returncode == 2 and repr(HOSTILE) in one_line(proc) and "DISCOUNT_CAP=" in proc.stderr
    proc = make("explain", "CUSTOMER_ID=O'Brien")
    assert proc.returncode == 2 and 'no customer "O\'Brien"' in one_line(proc)


def test_the_origin_readme_form_sets_the_cap_and_says_so_first(warehouse_copy: Path) -> None:
    proc = make("activate", "SEGMENT=all", "DRY_RUN=1", "OUTPUT=json", "LIMIT=20", env={"DISCOUNT_CAP": "10"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["guardrails"]["discount_cap"] == 10.0
    assert proc.stderr.splitlines()[0] == (
        "make activate: from the environment: DISCOUNT_CAP=10 (make's command line wins)"
    )
    # OUTPUT in the environment changes nothing on stdout: the table, and a line saying it was ignored
    proc = make("plan", "LIMIT=5", env={"OUTPUT": "json"})
    assert proc.returncode == 0 and proc.stdout.startswith("plan ")
    assert "ignored from the environment" in proc.stderr.splitlines()[0]


def test_bad_input_is_2_and_busy_is_4_through_make(warehouse_copy: Path) -> None:
    proc = make("runs", "LAST=abc")
    assert proc.returncode == 2 and one_line(proc).startswith("error: --last / LAST=: must be a whole number")
    with warehouse_lock(warehouse_copy, command="test-holder", run_id="run-held"):
        proc = make("plan", "LIMIT=5")
    assert proc.returncode == 4 and "run-held" in one_line(proc)
    assert make("runs").returncode == 0


def test_gate_refused_is_5_partial_is_3_failed_is_1_through_make(warehouse_copy: Path, start_servers) -> None:
    start_servers(webhook={"error_rate": 1.0})  # every webhook request fails
    fast = {
        "NBA_DELIVERY__MAX_RETRIES": "0",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "OPENAI_API_KEY": "x",
    }
    proc = make("activate", "DRY_RUN=0", "MODE=llm", "LIMIT=10", env=fast)
    assert proc.returncode == 5 and "refusing to go live" in one_line(proc)
    proc = make("activate", "DRY_RUN=0", "LIMIT=15", "OUTPUT=json", env=fast)
    assert proc.returncode == 3 and json.loads(proc.stdout)["status"] == "partial", proc.stderr
    proc = make(
        "activate", "DRY_RUN=0", "LIMIT=40", "SUPPRESS_HOURS=0", "OUTPUT=json",
        env={**fast, "NBA_DESTINATIONS": "webhook"},
    )  # fmt: skip
    assert proc.returncode == 1 and json.loads(proc.stdout)["status"] == "failed", proc.stderr


def test_a_directory_as_the_warehouse_is_named_as_one(tmp_path: Path) -> None:
    (tmp_path / "wh.duckdb").mkdir()
    proc = make("runs", env={"NBA_DUCKDB_PATH": str(tmp_path / "wh.duckdb")})
    line = one_line(proc)
    assert proc.returncode == 2 and "is a directory, not a DuckDB file" in line and "in use" not in line


@pytest.mark.parametrize("keep", [0.4, 0.9])
def test_a_truncated_warehouse_is_one_line_on_status_and_explain(
    warehouse_copy: Path, keep: float, capsys
) -> None:
    data = warehouse_copy.read_bytes()
    warehouse_copy.write_bytes(data[: int(len(data) * keep)])
    for args in (["status"], ["explain", "--customer-id", "C0000042"], ["runs"]):
        assert cli(args) == 2, args
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and str(warehouse_copy) in err, err
        assert "truncated" in err or "not a readable DuckDB database" in err, err


def test_a_truncated_raw_parquet_file_fails_the_build_naming_the_file(
    demo_warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    for f in demo_warehouse.raw_dir.iterdir():
        (raw / f.name).write_bytes(f.read_bytes())
    orders = raw / "orders.parquet"
    orders.write_bytes(orders.read_bytes()[:5000])
    for key, value in demo_warehouse.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("NBA_RAW_DIR", str(raw))
    monkeypatch.setenv("NBA_DUCKDB_PATH", str(tmp_path / "new.duckdb"))
    assert warehouse_cli.main(["build"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"raw file {orders} is not a readable Parquet file" in err, err
    assert not (tmp_path / "new.duckdb").exists()


def test_a_raw_file_missing_a_column_is_named_with_the_column(demo_warehouse, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    table = pq.read_table(demo_warehouse.raw_dir / "customers.parquet")
    pq.write_table(table.drop(["email"]), raw / "customers.parquet")
    results = tmp_path / "run_results.json"
    message = (
        "Runtime Error in model stg_raw__customers (models/staging/stg_raw__customers.sql)\n  Binder Error: "
        'Column "email" referenced that exists in the SELECT clause - but this column cannot be referenced'
    )
    row = {"unique_id": "model.activate_nba.stg_raw__customers", "status": "error", "message": message}
    results.write_text(json.dumps({"results": [row]}))
    ((node, cause),) = failed_nodes(results, raw_dir=raw)
    assert node == "stg_raw__customers"
    assert cause.startswith(f"raw file {raw / 'customers.parquet'} has no column 'email'"), cause
    # a data test's failure is its own verdict, not a file's fault
    row = {"unique_id": "test.activate_nba.not_null_x.1", "status": "fail", "message": "Got 3 results"}
    results.write_text(json.dumps({"results": [row]}))
    assert failed_nodes(results, raw_dir=raw) == [("not_null_x", "Got 3 results")]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("NBA_HUBSPOT__BASE_URL", "notaurl"),
        ("NBA_HUBSPOT__BASE_URL", "ftp://api.hubapi.com"),
        ("NBA_SALESFORCE__INSTANCE_URL", "https://"),
        ("NBA_WEBHOOK__URL", "127.0.0.1:9/hooks"),
    ],
)
def test_a_destination_url_that_is_not_one_is_refused_before_a_live_run(
    servers, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as err:
        load_settings(ActivateSettings, dry_run=False)
    assert str(err.value) == f"{variable}: must be an http:// or https:// URL with a host, " + (
        f"e.g. https://api.example.com (got {value!r})"
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [("NBA_LLM__BASE_URL", "notaurl"), ("NBA_LLM__BASE_URL", "ftp://x"), ("OPENAI_BASE_URL", "notaurl")],
)
def test_an_llm_endpoint_url_that_is_not_one_is_refused_before_the_run(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """It was taken: `make plan MODE=llm` then sent every request nowhere and fell back to the rules
    for each (connection_error), exit 0, the setting never named."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as err:
        load_settings(ActivateSettings, mode="llm")
    assert str(err.value) == "NBA_LLM__BASE_URL / OPENAI_BASE_URL: must be an http:// or https:// URL " + (
        f"with a host, e.g. https://api.example.com (got {value!r})"
    )


@pytest.mark.parametrize("value", ["notaurl", "http://", "ftp://127.0.0.1/alerts"])
def test_an_alert_url_that_is_not_one_is_named_before_a_live_run(
    servers, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """`http://` alone was taken as a URL (the line then asked for NBA_ALERTS__SECRET instead)."""
    monkeypatch.setenv("NBA_ALERTS__WEBHOOK_URL", value)
    monkeypatch.setenv("NBA_ALERTS__SECRET", "s")
    with pytest.raises(ConfigError) as err:
        load_settings(ActivateSettings, dry_run=False)
    assert str(err.value).startswith(
        "NBA_ALERTS__WEBHOOK_URL: must be an http:// or https:// URL with a host"
    )
    assert f"(got {value!r})" in str(err.value)


@pytest.mark.parametrize(("variable", "value"), [("NBA_HUBSPOT__TOKEN", ""), ("NBA_WEBHOOK__SECRET", " ")])
def test_an_empty_destination_secret_is_named_before_a_live_run(
    servers, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """It was taken: the run then sent its requests unauthorised (or signed with an empty key)."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as err:
        load_settings(ActivateSettings, dry_run=False)
    assert str(err.value).startswith(f"{variable}: is empty"), err.value


def test_a_good_destination_url_is_taken(servers, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBA_HUBSPOT__BASE_URL", "https://api.hubapi.com/")
    settings = load_settings(ActivateSettings, dry_run=False)
    assert settings.destination_settings("hubspot").base_url == "https://api.hubapi.com/"  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", ["", " "])
def test_an_empty_hubspot_id_property_is_named(servers, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """It was taken: every upsert then named no property to match contacts by."""
    monkeypatch.setenv("NBA_HUBSPOT__ID_PROPERTY", value)
    with pytest.raises(ConfigError) as err:
        load_settings(ActivateSettings, dry_run=False)
    assert str(err.value).startswith("NBA_HUBSPOT__ID_PROPERTY: is empty"), err.value
    assert "\n" not in str(err.value)
    monkeypatch.setenv("NBA_HUBSPOT__ID_PROPERTY", "crm_id")
    settings = load_settings(ActivateSettings, dry_run=False)
    assert settings.destination_settings("hubspot").id_property == "crm_id"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("variable", "value"), [("NBA_HUBSPOT__MAX_BATCH", "0"), ("NBA_HUBSPOT__RATE_PER_10S", "-5")]
)
def test_a_destination_number_out_of_range_names_the_value_given(
    servers, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """pydantic's "Input should be greater than 0" named the variable, not what it was given."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as err:
        load_settings(ActivateSettings, dry_run=False)
    assert str(err.value).startswith(f"{variable}: ") and str(err.value).endswith(f"(got {value!r})")
    monkeypatch.setenv(variable, "50")
    load_settings(ActivateSettings, dry_run=False)  # a value in range is taken


def test_an_unknown_dbt_target_is_one_line_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """NBA_DBT_TARGET=oracle: `make plan` exited 0 and `make build` printed dbt's raw line."""
    import yaml

    monkeypatch.setenv("NBA_DUCKDB_PATH", str(tmp_path / "w" / "warehouse.duckdb"))
    monkeypatch.setenv("NBA_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("NBA_RAW_DIR", str(tmp_path / "raw"))
    monkeypatch.setenv("NBA_DBT_TARGET", "oracle")
    for run, argv in ((warehouse_cli.main, ["build"]), (warehouse_cli.main, ["seed"]),
                      (cli, ["plan", "--no-progress"])):  # fmt: skip
        assert run(argv) == 2, argv
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and "NBA_DBT_TARGET='oracle'" in lines[0] and "dev, spark" in lines[0], lines
    assert list(tmp_path.iterdir()) == []  # no lock file, outbox or raw data
    from warehouse.build import DBT_TARGETS, dbt_target

    profiles = yaml.safe_load((ROOT / "warehouse" / "dbt" / "profiles.yml").read_text())
    assert set(DBT_TARGETS) == set(profiles["nba_warehouse"]["outputs"])
    for target in DBT_TARGETS:
        monkeypatch.setenv("NBA_DBT_TARGET", target)
        assert dbt_target() == target
    monkeypatch.delenv("NBA_DBT_TARGET")
    assert dbt_target() == "dev"


def test_an_empty_mapping_is_named_as_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """MAPPING= was taken as the current folder: "mapping file /work/... does not exist"."""
    monkeypatch.setenv("NBA_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("NBA_RAW_DIR", str(tmp_path / "raw"))
    for command in ("build", "check-sources"):
        assert warehouse_cli.main([command, "--mapping", ""]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and "MAPPING= (--mapping) is empty" in lines[0], lines
        assert "does not exist" not in lines[0]
        missing = tmp_path / "sources.yml"  # a file named, but not there: said as before
        assert warehouse_cli.main([command, "--mapping", str(missing)]) == 2
        assert f"mapping file {missing} does not exist" in capsys.readouterr().err
