"""Never build over what is not ours (issue 29, item 2), in both directions: another project's DuckDB
file, a file that is not DuckDB, and a user's table in our `main` are refused in one line (exit 2)
and left byte for byte as they were; our own warehouse, also one built before the marker existed,
is rebuilt as before and carries the marker; NBA_WAREHOUSE__OVERWRITE=1 moves a foreign file aside
and builds. The outbox, reports and cache folders are claimed the same way."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pytest

from activation.cli import main as activate_cli
from testing.demo_warehouse import DemoWarehouse
from warehouse import build
from warehouse.cli import main as warehouse_cli
from warehouse.errors import NotOurs
from warehouse.ownership import FOLDER_MARK, MARKER, PROJECT, file_problem, owned_dir


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _foreign(db: Path) -> None:
    with duckdb.connect(str(db)) as con:
        con.execute(
            "create table customers_master as select range as id, 'x' || range as name from range(50)"
        )
        con.execute("create table orders_2025 as select range as id, range * 2.5 as amount from range(80)")


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_a_foreign_duckdb_file_is_refused_in_one_line_and_left_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    db = tmp_path / "theirs.duckdb"
    _foreign(db)
    before = _digest(db)
    monkeypatch.setenv("NBA_DUCKDB_PATH", str(db))
    monkeypatch.setenv("NBA_RAW_DIR", str(tmp_path / "raw"))  # refused before any data is generated
    assert warehouse_cli(["build"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(db) in line and "main.customers_master" in line and "main.orders_2025" in line
    assert "NBA_DUCKDB_PATH" in line and "NBA_WAREHOUSE__OVERWRITE=1" in line
    assert activate_cli(["plan", "--no-progress"]) == 2  # make plan builds first: refused the same way
    assert "did not build" in _one_line(capsys.readouterr().err)
    assert _digest(db) == before and not (tmp_path / "raw").exists()
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select count(*) from customers_master").fetchone() == (50,)
        assert con.execute("select count(*) from orders_2025").fetchone() == (80,)
    assert not list(tmp_path.glob("*.replaced-*")) and not list(tmp_path.glob(".theirs-build"))


def test_a_refused_file_gets_no_lock_file_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """build, plan and replay-dlq on another project's file: refused in one line, and no
    `<file>.lock` left beside it (it was created before the ownership check and kept)."""
    from warehouse.lock import lock_path, warehouse_lock

    (tmp_path / "theirs").mkdir()
    db = tmp_path / "theirs" / "theirs.duckdb"
    _foreign(db)
    monkeypatch.setenv("NBA_DUCKDB_PATH", str(db))
    monkeypatch.setenv("NBA_RAW_DIR", str(tmp_path / "raw"))
    monkeypatch.setenv("NBA_DESTINATIONS", "webhook")
    monkeypatch.setenv("NBA_WEBHOOK__URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("NBA_WEBHOOK__SECRET", "s")
    for code, argv in ((warehouse_cli, ["build"]), (activate_cli, ["plan", "--no-progress"]),
                       (activate_cli, ["replay-dlq"])):  # fmt: skip
        assert code(argv) == 2, argv
        assert str(db) in _one_line(capsys.readouterr().err)
        assert [p.name for p in db.parent.iterdir()] == ["theirs.duckdb"], argv
    # a lock file it did not create is never removed; and the lock works as before after a refusal
    lock_path(db).write_text("")
    assert warehouse_cli(["build"]) == 2 and lock_path(db).exists()
    lock_path(db).unlink()
    with warehouse_lock(db, command="test") as lease:
        assert lease.path == lock_path(db) and lock_path(db).read_text().strip()
    assert lock_path(db).exists() and lock_path(db).read_text() == ""  # emptied, kept: not refused


def test_a_file_that_is_not_duckdb_is_refused_and_an_empty_one_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "notes.duckdb"
    db.write_text("my notes, not a database\n" * 100)
    monkeypatch.setenv("NBA_DUCKDB_PATH", str(db))
    monkeypatch.setenv("NBA_RAW_DIR", str(tmp_path / "raw"))
    with pytest.raises(NotOurs, match="is not a DuckDB file") as info:
        build.build()
    assert info.value.exit_code == 2 and db.read_text().startswith("my notes")
    db.write_text("")
    assert file_problem(db) is None  # nothing to lose
    with duckdb.connect(str(tmp_path / "blank.duckdb")):
        pass
    assert file_problem(tmp_path / "blank.duckdb") is None  # a database with no table at all


def test_overwrite_moves_the_foreign_file_aside_then_builds(
    small_env: DemoWarehouse, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    db = small_env.duckdb_path
    db.unlink()
    _foreign(db)
    before = _digest(db)
    monkeypatch.setenv("NBA_WAREHOUSE__OVERWRITE", "1")
    build.build()
    (aside,) = db.parent.glob(f"{db.name}.replaced-*")
    assert _digest(aside) == before  # the user's file, byte for byte, beside the new warehouse
    assert str(aside) in caplog.text and "moved aside" in caplog.text
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute(f"select project from {MARKER}").fetchall() == [(PROJECT,)]
        assert con.execute("select count(*) from main.dim_customer").fetchone()[0] > 0  # type: ignore[index]
    assert file_problem(db) is None


def test_our_warehouse_built_before_the_marker_is_rebuilt_and_marked_and_a_user_table_in_main_refused(
    small_env: DemoWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = small_env.duckdb_path
    with duckdb.connect(str(db)) as con:  # as a build before the marker left it
        con.execute(f"drop table {MARKER}")
        con.execute(
            "insert into ops.run_log (run_id, status) values ('20261127T100000Z-aaaaaa', 'completed')"
        )
    assert file_problem(db) is None  # our marts and ops tables: ours
    build.build()
    with duckdb.connect(str(db), read_only=True) as con:
        ((project, main),) = con.execute(f"select project, main_relations from {MARKER}").fetchall()
        assert con.execute("select count(*) from ops.run_log").fetchone() == (1,)  # carried over
    assert project == PROJECT and "dim_customer" in json.loads(main)
    with duckdb.connect(str(db)) as con:
        con.execute("create table main.my_notes as select 1 as x")
    before = _digest(db)
    with pytest.raises(NotOurs, match="main that no build of this project made \\(my_notes\\)"):
        build.build()
    assert _digest(db) == before


def test_folders_that_are_not_ours_are_refused_and_ours_are_claimed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    monkeypatch.setenv("NBA_OUTBOX_DIR", str(outbox))
    (outbox / "20261127T140000Z-abc123").mkdir()  # a run of ours, from before the marker
    assert owned_dir("outbox") == outbox and (outbox / FOLDER_MARK).exists()
    (outbox / "theirs.txt").write_text("x")
    assert owned_dir("outbox") == outbox  # marked: what else lands there is the user's business
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "budget.xlsx").write_text("x")
    monkeypatch.setenv("NBA_REPORTS_DIR", str(reports))
    with pytest.raises(NotOurs, match=r"NBA_REPORTS_DIR=.*reports is a folder this project did not create"):
        owned_dir("reports")
    assert sorted(p.name for p in reports.iterdir()) == ["budget.xlsx"]
    monkeypatch.setenv("NBA_CACHE_DIR", str(tmp_path / "new" / "cache"))
    assert owned_dir("cache").is_dir()  # created, and marked
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "cat.jpg").write_text("x")
    monkeypatch.setenv("NBA_OUTBOX_DIR", str(photos))
    assert activate_cli(["plan", "--no-progress"]) == 2  # before the warehouse is opened or built
    line = _one_line(capsys.readouterr().err)
    assert "NBA_OUTBOX_DIR" in line and "cat.jpg" in line
    assert sorted(p.name for p in photos.iterdir()) == ["cat.jpg"]


def test_make_seed_on_a_new_path_leaves_a_warehouse_the_next_build_may_replace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """`make seed` then `make build` on a fresh NBA_DUCKDB_PATH: the seeds are ours, so the file is
    marked and the build is not refused; seeding over another project's file is still refused."""
    db = tmp_path / "fresh.duckdb"
    monkeypatch.setenv("NBA_DUCKDB_PATH", str(db))
    assert warehouse_cli(["seed"]) == 0
    assert file_problem(db) is None
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute(f"select project from {MARKER}").fetchall() == [(PROJECT,)]
    theirs = tmp_path / "theirs.duckdb"
    _foreign(theirs)
    before = _digest(theirs)
    monkeypatch.setenv("NBA_DUCKDB_PATH", str(theirs))
    assert warehouse_cli(["seed"]) == 2
    assert "did not build" in _one_line(capsys.readouterr().err) and _digest(theirs) == before


def test_make_seed_over_another_project_s_file_generates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """`make seed` is `generate` then `seed`: generate refused the foreign file only after it had
    replaced the raw data and the truth (two lines, one of them "nothing was changed")."""
    theirs = tmp_path / "theirs.duckdb"
    _foreign(theirs)
    before = _digest(theirs)
    monkeypatch.setenv("NBA_DUCKDB_PATH", str(theirs))
    monkeypatch.setenv("NBA_RAW_DIR", str(tmp_path / "raw"))
    monkeypatch.setenv("NBA_TRUTH_DIR", str(tmp_path / "truth"))
    assert warehouse_cli(["generate", "--customers", "200"]) == 2
    out, err = capsys.readouterr()
    assert "did not build" in _one_line(err) and not out
    assert not (tmp_path / "raw").exists() and not (tmp_path / "truth").exists()
    assert _digest(theirs) == before


def _sqlite(db: Path) -> None:
    import sqlite3

    con = sqlite3.connect(db)
    con.execute("create table contacts (id integer, name text)")
    con.execute("insert into contacts values (1, 'x')")
    con.commit()
    con.close()


@pytest.mark.parametrize("kind", ["foreign", "sqlite", "missing"])
def test_commands_that_do_not_build_read_or_write_nothing_that_is_not_ours(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """status, runs, explain, replay-dlq, simulate-outcomes and prompt on another project's DuckDB
    file, a SQLite file (which DuckDB would open through an extension it downloads) or no file: one
    line naming the file, exit 2, and the file as it was (replay-dlq wrote ops tables into a foreign
    file and created a new one at a missing path; simulate-outcomes created one)."""
    from agent.cli import main as agent_cli

    db = tmp_path / "theirs.duckdb"
    {"foreign": _foreign, "sqlite": _sqlite, "missing": lambda _db: None}[kind](db)
    before = _digest(db) if db.exists() else None
    monkeypatch.setenv("NBA_DUCKDB_PATH", str(db))
    monkeypatch.setenv("NBA_DESTINATIONS", "webhook")
    monkeypatch.setenv("NBA_WEBHOOK__URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("NBA_WEBHOOK__SECRET", "s")
    expected = {
        "foreign": "is a DuckDB database this project did not build",
        "sqlite": "is not a DuckDB file",
        "missing": "no warehouse at",
    }[kind]
    commands = [
        ["status"], ["runs"], ["explain", "--customer-id", "C0000042"], ["replay-dlq"], ["simulate-outcomes"],
    ]  # fmt: skip
    for argv in commands:
        assert activate_cli(argv) == 2, argv
        line = _one_line(capsys.readouterr().err)
        assert str(db) in line and expected in line and "extension" not in line, (argv, line)
    assert agent_cli(["prompt", "--customer-id", "C0000042"]) in (1, 2)
    line = _one_line(capsys.readouterr().err)
    assert str(db) in line and "extension" not in line, line
    assert (_digest(db) if db.exists() else None) == before
    if kind == "foreign":
        with duckdb.connect(str(db), read_only=True) as con:
            schemas = {s for (s,) in con.execute("select schema_name from duckdb_tables()").fetchall()}
        assert schemas == {"main"}


def _users_folder(folder: Path) -> list[str]:
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("mine\n")
    (folder / "sub").mkdir()
    (folder / "sub" / "export.csv").write_text("a,b\n1,2\n")
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("variable", ["NBA_RAW_DIR", "NBA_TRUTH_DIR"])
def test_the_generator_never_replaces_a_users_folder(
    variable: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """NBA_RAW_DIR or NBA_TRUTH_DIR at a folder of the user's: make seed, make build and a first
    make plan replaced it whole with generated data (its files deleted, exit 0). Refused in one
    line now; the generator's own folder is still replaced."""
    from warehouse import generate

    monkeypatch.setenv("NBA_RAW_DIR", str(tmp_path / "raw"))
    monkeypatch.setenv("NBA_TRUTH_DIR", str(tmp_path / "truth"))
    theirs = tmp_path / "theirs"
    files = _users_folder(theirs)
    monkeypatch.setenv(variable, str(theirs))
    assert warehouse_cli(["generate", "--customers", "200"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{variable}={theirs}" in line and "notes.txt" in line and "nothing was written" in line
    assert sorted(str(p.relative_to(theirs)) for p in theirs.rglob("*")) == files
    monkeypatch.setenv(variable, str(tmp_path / "new"))
    config = generate.GenerateConfig(customers=200)
    generate.generate(config)
    generate.generate(config)  # over its own output: replaced as before
    assert generate.generated(tmp_path / "new")


def test_the_mapped_sources_never_replace_a_users_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NBA_SOURCES__DIR at a folder of the user's: a build from a mapping replaced it whole."""
    import yaml

    from warehouse import generate, raw_contract, sources

    raw = tmp_path / "raw"
    generate.generate(generate.GenerateConfig(customers=200), out=raw, truth_out=tmp_path / "truth")
    mapping = tmp_path / "sources.yml"
    tables = {name: {"parquet": str(raw / f"{name}.parquet")} for name in raw_contract.load_contract()}
    mapping.write_text(yaml.safe_dump({"version": 1, "tables": tables}))
    theirs = tmp_path / "theirs"
    files = _users_folder(theirs)
    monkeypatch.setenv("NBA_SOURCES__DIR", str(theirs))
    with pytest.raises(NotOurs, match=r"NBA_SOURCES__DIR=.*notes\.txt.*nothing was written"):
        sources.prepare(mapping)
    assert sorted(str(p.relative_to(theirs)) for p in theirs.rglob("*")) == files
    monkeypatch.setenv("NBA_SOURCES__DIR", str(tmp_path / "mapped"))
    assert sources.prepare(mapping) == tmp_path / "mapped"
    assert sources.prepare(mapping) == tmp_path / "mapped"  # its own output: replaced as before


def test_a_bad_overwrite_value_is_refused_even_when_no_build_is_needed(
    demo_warehouse_env: DemoWarehouse, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """NBA_WAREHOUSE__OVERWRITE=maybe was taken silently by make plan on a built warehouse."""
    monkeypatch.setenv("NBA_WAREHOUSE__OVERWRITE", "maybe")
    assert activate_cli(["plan", "--no-progress"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "NBA_WAREHOUSE__OVERWRITE" in line and "'maybe'" in line


def test_a_damaged_generator_meta_file_is_one_line_and_make_seed_replaces_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A raw folder whose _meta.json is not JSON: make build printed a JSONDecodeError traceback."""
    from warehouse import generate

    raw, truth = tmp_path / "raw", tmp_path / "truth"
    monkeypatch.setenv("NBA_RAW_DIR", str(raw))
    monkeypatch.setenv("NBA_TRUTH_DIR", str(truth))
    monkeypatch.setenv("NBA_DUCKDB_PATH", str(tmp_path / "w.duckdb"))
    config = generate.GenerateConfig(customers=200)
    generate.generate(config)
    (raw / generate.META_FILE).write_text("{not json")
    assert warehouse_cli(["build"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(raw / generate.META_FILE) in line and "make seed" in line
    generate.generate(config)  # the generator's own folder, damaged: replaced
    assert generate.read_meta() == config.meta


def test_moving_aside_never_replaces_an_earlier_file_moved_aside(tmp_path) -> None:
    from warehouse.ownership import move_aside

    target = tmp_path / "requests.jsonl"
    kept = []
    for i in range(3):  # within the same second: each gets its own name
        target.write_text(f"version {i}\n")
        kept.append(move_aside(target))
    assert not target.exists() and len(set(kept)) == 3
    assert [p.read_text() for p in kept] == ["version 0\n", "version 1\n", "version 2\n"]
    assert all(p.name.startswith("requests.jsonl.replaced-") for p in kept)


def test_a_refusal_creates_no_folder_of_ours_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """`make bi` and `make llm-batch-export` on another project's file: refused in one line naming it,
    and neither the BI folder nor the decision cache (NBA_CACHE_DIR/llm_decisions.sqlite) was
    created before the refusal; the folder check alone creates nothing, owned_dir does."""
    from agent import batch_cli

    db = tmp_path / "theirs.duckdb"
    _foreign(db)
    bi, cache = tmp_path / "bi", tmp_path / "cache"
    monkeypatch.setenv("NBA_DUCKDB_PATH", str(db))
    monkeypatch.setenv("NBA_RAW_DIR", str(tmp_path / "raw"))
    monkeypatch.setenv("NBA_BI_DIR", str(bi))
    monkeypatch.setenv("NBA_CACHE_DIR", str(cache))
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local-test")
    assert warehouse_cli(["bi"]) == 2
    assert str(db) in _one_line(capsys.readouterr().err) and not bi.exists()
    assert batch_cli.main(["export", "--out", str(tmp_path / "requests.jsonl")]) == 2
    assert str(db) in _one_line(capsys.readouterr().err)
    assert not cache.exists() and not (tmp_path / "requests.jsonl").exists()
    from warehouse.ownership import check_dir

    assert check_dir("bi") == bi and not bi.exists()
    assert owned_dir("bi") == bi and (bi / FOLDER_MARK).exists()


def test_the_bi_folder_claims_every_file_the_bi_export_writes() -> None:
    """The BI folder's pattern spells out the export's tables (ownership sits below warehouse/bi.py):
    a table added to BI_TABLES and not here would make our own folder look foreign."""
    from warehouse.bi import BI_TABLES
    from warehouse.ownership import _FOLDERS

    ours = _FOLDERS["bi"][2]
    assert all(ours.match(f"{t}.{ext}") for t in BI_TABLES for ext in ("csv", "parquet"))
    assert not ours.match("customers.csv") and not ours.match("dim_customer.csv.bak")
