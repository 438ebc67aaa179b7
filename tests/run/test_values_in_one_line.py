"""A value given with a line break in it (make explain RUN_ID="a<newline>b", MAPPING=, FILE=) is
echoed with the break written as \\n: the message stays one line, as every refusal is."""

from __future__ import annotations

from pathlib import Path

import pytest

from activation.cli import main as activate_cli
from agent.batch_cli import main as batch_cli
from agent.cli import main as agent_cli
from testing.demo_warehouse import DemoWarehouse
from warehouse.cli import main as warehouse_cli

VALUE = "first line\nrm -rf second line"


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_a_run_id_with_a_line_break_is_one_line(demo_warehouse_env: DemoWarehouse, capsys) -> None:
    assert activate_cli(["explain", "--customer-id", "C0000042", "--run-id", VALUE]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "first line\\nrm -rf second line" in line and "RUN_ID=" in line


@pytest.mark.parametrize("command", ["check-sources", "build"])
def test_a_mapping_path_with_a_line_break_is_one_line(command: str, tmp_path: Path, capsys) -> None:
    assert warehouse_cli([command, "--mapping", str(tmp_path / VALUE)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "first line\\nrm -rf second line" in line and "MAPPING=" in line


def test_a_batch_file_with_a_line_break_is_one_line(tmp_path: Path, capsys) -> None:
    assert batch_cli(["import", "--file", str(tmp_path / VALUE)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "first line\\nrm -rf second line" in line and "FILE=" in line


def test_a_customer_id_make_prompt_does_not_know_is_one_line_naming_it(
    demo_warehouse_env: DemoWarehouse, capsys
) -> None:
    """make prompt CUSTOMER_ID=nosuch said "customer 'nosuch' is in no segment" without naming
    CUSTOMER_ID= (make explain's line names it)."""
    for value in ("nosuch", VALUE):
        assert agent_cli(["prompt", "--customer-id", value]) == 2
        line = _one_line(capsys.readouterr().err)
        assert "CUSTOMER_ID=" in line and "no segment" in line, line


@pytest.mark.parametrize("command", ["check-sources", "build"])
@pytest.mark.parametrize(
    "text",
    ["nothing: here\n", "tables:\n  not_a_table: {parquet: x.parquet}\n"],
    ids=["no tables", "bad table"],
)
def test_a_mapping_file_with_a_line_break_in_its_name_is_one_line_per_problem(
    command: str, text: str, tmp_path: Path, capsys
) -> None:
    """An existing mapping file under such a name: its problems named the path with the break as it
    is, so `make check-sources MAPPING=...` printed each problem on two lines."""
    mapping = tmp_path / VALUE
    mapping.parent.mkdir(parents=True, exist_ok=True)
    mapping.write_text(text, encoding="utf-8")
    assert warehouse_cli([command, "--mapping", str(mapping)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith(f"nba-warehouse {command}: ") for line in lines), lines
    assert "first line\\nrm -rf second line" in lines[0], lines


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("custom_id,answer\n", "is not a JSON object"),
        ("", "the file is empty"),
        ('{"custom_id": "x", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n', "input file"),
        ('{"custom_id": "x", "answer": 1}\n', "is not a Batch API output file line"),
    ],
    ids=["not jsonl", "empty", "requests", "wrong shape"],
)
def test_an_existing_batch_file_with_a_line_break_in_its_name_is_one_line(
    text: str, problem: str, tmp_path: Path, capsys
) -> None:
    """make llm-batch-import FILE=<such a name> that exists: the refusal echoed the name as it is,
    on two lines (a missing one was already one line)."""
    answers = tmp_path / VALUE
    answers.parent.mkdir(parents=True, exist_ok=True)
    answers.write_text(text, encoding="utf-8")
    assert batch_cli(["import", "--file", str(answers)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "first line\\nrm -rf second line" in line and "FILE=" in line and problem in line, line
