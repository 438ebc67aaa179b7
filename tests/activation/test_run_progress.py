"""The progress file beside the warehouse lock is the run's own: written as the run goes, removed at its
end, and a file of that name that is not a run's progress is never replaced nor deleted."""

from __future__ import annotations

import json

import pytest

from activation.run_progress import progress_path, run_progress


def test_a_run_writes_its_progress_then_removes_it_replacing_one_a_dead_run_left(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    dead = {"run_id": "dead", "command": "nba-activate", "step": "hubspot", "done": 1, "total": 9}
    progress_path(db).write_text(json.dumps(dead))
    with run_progress(db, "run-1", command="nba-activate") as progress:
        progress.step("deciding", total=4)(2)
        assert json.loads(progress_path(db).read_text())["run_id"] == "run-1"
    assert not progress_path(db).exists()


@pytest.mark.parametrize(
    "theirs", ["my notes\n", "", '{"run_id": "x"}', "[1]"], ids=["text", "empty", "no command", "a list"]
)
def test_someone_else_s_file_at_the_progress_path_is_left_as_it_is(tmp_path, theirs):
    """NBA_DUCKDB_PATH=w.duckdb beside a user's w.duckdb.progress: the run replaced it with its own
    progress and deleted it at its end."""
    db = tmp_path / "warehouse.duckdb"
    progress_path(db).write_text(theirs)
    with run_progress(db, "run-1", command="nba-activate") as progress:
        progress.step("deciding", total=4)(4)
    assert progress_path(db).read_text() == theirs
    assert sorted(p.name for p in tmp_path.iterdir()) == [progress_path(db).name]


def test_a_folder_at_the_progress_path_is_left_as_it_is(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    progress_path(db).mkdir()
    (progress_path(db) / "keep.txt").write_text("mine")
    with run_progress(db, "run-1", command="nba-activate") as progress:
        progress.step("deciding", total=1)(1)
    assert (progress_path(db) / "keep.txt").read_text() == "mine"
