"""How parameters and exit codes travel between make and the programs, tested on a copy of the
Makefile whose programs are a stand-in (PY=<a script that records its arguments and NBA_* variables
and exits with the code it is told>), so every target and every parameter is checked in milliseconds:

- a value is data, never shell text: quotes, ;, $(...), backticks, make's own $(shell ...), a
  newline and non-ASCII reach the program exactly as typed, and nothing runs;
- the origin README's parameters count from the environment too, say so in the run's first line,
  and lose to make's command line; any other parameter in the environment is ignored, and said to be;
- `make <target>` exits with the program's own code (and without a C compiler, make's "Error N"
  line still carries it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from run_helpers import ROOT

HOSTILE = "1';touch PWNED_1;'\"$(touch PWNED_2)`touch PWNED_3`;$(shell touch PWNED_4)\nzweite Zeile ü €"
STAND_IN = """#!{python}
import json, os, sys
with open(os.environ["DUMP_TO"], "a") as fh:  # one line per call (make seed makes two)
    env = {{k: v for k, v in os.environ.items() if k.startswith("NBA_")}}
    print(json.dumps({{"argv": sys.argv[1:], "env": env}}), file=fh)
command = sys.argv[3].upper().replace("-", "_") if len(sys.argv) > 3 else ""
sys.exit(int(os.environ.get("DUMP_EXIT_" + command, os.environ.get("DUMP_EXIT", "0"))))
"""
# target -> (parameters passed as NBA_* settings, parameters passed as --flags)
TARGETS = {
    "plan": ("SEGMENT MODE GOAL DISCOUNT_CAP SUPPRESS_HOURS PROMPT_VERSION AS_OF GLOBAL_HOLDOUT_PCT "
             "SEGMENT_HOLDOUT_PCT LIMIT OUTPUT", ""),
    "activate": ("SEGMENT MODE GOAL DISCOUNT_CAP SUPPRESS_HOURS PROMPT_VERSION AS_OF GLOBAL_HOLDOUT_PCT "
                 "SEGMENT_HOLDOUT_PCT LIMIT OUTPUT DRY_RUN FORCE", ""),
    "apply": ("FORCE OUTPUT", "PLAN"),
    "explain": ("OUTPUT PROMPT_VERSION", "CUSTOMER_ID RUN_ID"),
    "runs": ("OUTPUT", "LAST"),
    "status": ("OUTPUT", ""),
    "replay-dlq": ("OUTPUT", ""),
    "prompt": ("GOAL DISCOUNT_CAP PROMPT_VERSION AS_OF", "CUSTOMER_ID"),
    "eval": ("MODE GOAL DISCOUNT_CAP PROMPT_VERSION BASELINE SAMPLE AS_OF OUTPUT FAIL_IF_WORSE", ""),
    "llm-batch-export": ("SEGMENT MODE GOAL DISCOUNT_CAP SUPPRESS_HOURS PROMPT_VERSION AS_OF "
                         "GLOBAL_HOLDOUT_PCT SEGMENT_HOLDOUT_PCT LIMIT", "OUT"),
    "llm-batch-import": ("SEGMENT MODE GOAL", "FILE"),
    "llm-batch-run": ("", "FILE OUT"),
    "llm-batch-submit": ("", "FILE OUT"),
    "seed": ("", "SEED CUSTOMERS DATA_AS_OF"),
    "simulate-days": ("", "DAYS GOAL SEEDS CANDIDATE"),
}  # fmt: skip
FLAGS = {"PLAN": "--plan", "CUSTOMER_ID": "--customer-id", "RUN_ID": "--run-id", "LAST": "--last",
         "OUT": "--out", "FILE": "--file", "SEED": "--seed", "CUSTOMERS": "--customers",
         "DATA_AS_OF": "--as-of", "DAYS": "--days", "GOAL": "--goal", "SEEDS": "--seeds",
         "CANDIDATE": "--candidate"}  # fmt: skip


@pytest.fixture(scope="module")
def makedir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Makefile and its exit-status plugin, with an up-to-date install stamp and a stand-in PY."""
    d = tmp_path_factory.mktemp("make")
    shutil.copy(ROOT / "Makefile", d / "Makefile")
    (d / "make").mkdir()
    shutil.copy(ROOT / "make" / "exit_status.c", d / "make" / "exit_status.c")
    for stamp_input in ("pyproject.toml", "requirements.lock"):  # older than the install stamp
        (d / stamp_input).write_text("")
        os.utime(d / stamp_input, (0, 0))
    (d / ".venv").mkdir()
    (d / ".venv" / ".installed").write_text("")
    stand_in = d / "program"
    stand_in.write_text(STAND_IN.format(python=sys.executable))
    stand_in.chmod(0o755)
    return d


def make(d: Path, *args: str, env: dict[str, str] | None = None, code: int = 0):
    """Run make in `d` with the stand-in program; returns (process, what its first call received)."""
    dump = d / "received.json"
    dump.unlink(missing_ok=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("NBA_", "MAKE", "MFLAGS"))}
    full = {**base, "DUMP_TO": str(dump), "DUMP_EXIT": str(code), **(env or {})}
    proc = subprocess.run(
        ["make", "-s", *args, f"PY={d / 'program'}"], cwd=d, env=full, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    return proc, (json.loads(dump.read_text().splitlines()[0]) if dump.exists() else None)


def _nothing_ran(d: Path) -> None:
    assert not list(d.glob("PWNED*")) and not list(Path.cwd().glob("PWNED*"))


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_parameter_reaches_the_program_as_typed_and_nothing_runs(makedir: Path, target: str) -> None:
    settings, flags = (s.split() for s in TARGETS[target])
    given = [f"{name}={HOSTILE}" for name in dict.fromkeys(settings + flags)]
    proc, got = make(makedir, target, *given)
    _nothing_ran(makedir)
    assert proc.returncode == 0 and got is not None, proc.stderr
    for name in settings:
        assert got["env"][f"NBA_{name}"] == HOSTILE, name
    argv = got["argv"]
    for name in flags:
        i = argv.index(FLAGS[name])
        assert argv[i + 1] == HOSTILE, name


def test_a_switch_is_1_or_0_and_anything_else_is_refused_in_one_line(makedir: Path) -> None:
    proc, got = make(makedir, "explain", "CUSTOMER_ID=C1", "PROMPT=1")
    assert got is not None and "--prompt" in got["argv"]
    proc, got = make(makedir, "explain", "CUSTOMER_ID=C1", "PROMPT=0")
    assert got is not None and "--prompt" not in got["argv"]
    for bad in ("2", "yes", "1 1", "10", HOSTILE):  # (make itself strips a leading blank)
        proc, got = make(makedir, "explain", "CUSTOMER_ID=C1", f"PROMPT={bad}")
        lines = proc.stderr.strip().splitlines()
        assert got is None and proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert "PROMPT=: must be 1 or 0" in lines[0]
    _nothing_ran(makedir)
    proc, got = make(makedir, "llm-batch-import", "SKIP_UNKNOWN=2")
    assert got is None and proc.returncode == 2 and "SKIP_UNKNOWN=: must be 1 or 0" in proc.stderr
    # the overwrite switch of make build, on llm-batch-export (issue 29); run and submit resume OUT
    proc, got = make(makedir, "llm-batch-export", "OUT=x.jsonl", "OVERWRITE=1")
    assert got is not None and "--overwrite" in got["argv"]
    proc, got = make(makedir, "llm-batch-export", "OUT=x.jsonl", "OVERWRITE=0")
    assert got is not None and "--overwrite" not in got["argv"]
    proc, got = make(makedir, "llm-batch-export", "OUT=x.jsonl", f"OVERWRITE={HOSTILE}")
    assert got is None and proc.returncode == 2 and "OVERWRITE=: must be 1 or 0" in proc.stderr
    # llm-batch-run resumes into its OUT and takes no OVERWRITE; llm-batch-submit moves an OUT aside
    proc, got = make(makedir, "llm-batch-run", "FILE=a", "OUT=b", "OVERWRITE=1")
    assert got is not None and "--overwrite" not in got["argv"]
    proc, got = make(makedir, "llm-batch-submit", "FILE=a", "OUT=b", "OVERWRITE=1")
    assert got is not None and "--overwrite" in got["argv"]
    proc, got = make(makedir, "bi", "BI_INCLUDE_PII=true")
    assert got is None and proc.returncode == 2 and "BI_INCLUDE_PII=: must be 1 or 0" in proc.stderr


def test_the_readme_parameters_count_from_the_environment_and_say_so_in_the_first_line(makedir: Path) -> None:
    env = {"DISCOUNT_CAP": "10", "SEGMENT": "all", "GOAL": "engagement", "SUPPRESS_HOURS": "48",
           "MODE": "learned", "DRY_RUN": "1"}  # fmt: skip
    proc, got = make(makedir, "activate", env=env)
    assert proc.returncode == 0 and got is not None
    assert {k: got["env"][f"NBA_{k}"] for k in env} == env
    first = proc.stderr.splitlines()[0]
    assert first.startswith("make activate: from the environment:")
    assert all(f"{k}={v}" in first for k, v in env.items()) and "command line wins" in first
    # a hostile value from the environment: data too, and the line stays one line
    proc, got = make(makedir, "plan", env={"DISCOUNT_CAP": HOSTILE})
    _nothing_ran(makedir)
    assert got is not None and got["env"]["NBA_DISCOUNT_CAP"] == HOSTILE
    assert len(proc.stderr.strip().splitlines()) == 1


def test_the_command_line_wins_over_the_environment(makedir: Path) -> None:
    proc, got = make(makedir, "plan", "DISCOUNT_CAP=3", env={"DISCOUNT_CAP": "10", "MODE": "llm"})
    assert got is not None and got["env"]["NBA_DISCOUNT_CAP"] == "3" and got["env"]["NBA_MODE"] == "llm"
    first = proc.stderr.splitlines()[0]
    assert "MODE=llm" in first and "DISCOUNT_CAP" not in first


def test_other_parameters_in_the_environment_are_ignored_and_reported(makedir: Path) -> None:
    env = {"OUTPUT": "json", "LIMIT": "3", "AS_OF": "2026-01-01", "FORCE": "1", "PROMPT_VERSION": "v2"}
    proc, got = make(makedir, "activate", env=env)
    assert got is not None and proc.returncode == 0
    assert not {f"NBA_{k}" for k in env} & set(got["env"])  # none reaches the program
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("make activate: ignored from the environment")
    assert all(k in line for k in env)
    # a flag's parameter too: CUSTOMER_ID from the shell does not pick a customer
    proc, got = make(makedir, "explain", env={"CUSTOMER_ID": "C0000042", "LAST": "3"})
    assert got is not None and "--customer-id" not in got["argv"]
    assert "ignored from the environment" in proc.stderr and "CUSTOMER_ID" in proc.stderr
    assert "LAST" not in proc.stderr  # not a parameter of explain: nothing to say about it
    # nothing in the environment: nothing said
    proc, got = make(makedir, "status")
    assert got is not None and proc.stderr == ""


def test_a_documented_environment_parameter_a_target_does_not_take_is_named(makedir: Path) -> None:
    """SEGMENT, MODE, ... count from the environment: where a target does not take one, the run says
    so instead of leaving the user to think it applied (SEGMENT=... make eval ran every segment)."""
    proc, got = make(makedir, "eval", env={"SEGMENT": "churn_rescue_nps", "DRY_RUN": "0", "MODE": "rules"})
    assert got is not None and "NBA_SEGMENT" not in got["env"] and got["env"]["NBA_MODE"] == "rules"
    (line,) = proc.stderr.strip().splitlines()
    taken, _, ignored = line.partition("ignored from the environment (not parameters of make eval): ")
    assert "MODE=rules" in taken and "SEGMENT" not in taken
    assert ignored.split() == ["SEGMENT", "DRY_RUN"]
    proc, got = make(makedir, "simulate-days", env={"MODE": "llm"})
    assert got is not None and "NBA_MODE" not in got["env"] and "llm" not in got["argv"]
    assert (
        proc.stderr.strip()
        == "make simulate-days: ignored from the environment (not parameters of make simulate-days): MODE"
    )
    # one the target takes is not named as ignored
    proc, got = make(makedir, "plan", env={"SEGMENT": "churn_rescue_nps"})
    assert (
        got is not None and "not parameters" not in proc.stderr and "SEGMENT=churn_rescue_nps" in proc.stderr
    )


def test_nba_variables_on_makes_command_line_still_reach_the_program(makedir: Path) -> None:
    proc, got = make(makedir, "plan", f"NBA_LLM__TIMEOUT_S={HOSTILE}")
    _nothing_ran(makedir)
    assert got is not None and got["env"]["NBA_LLM__TIMEOUT_S"] == HOSTILE


@pytest.mark.parametrize("code", [0, 1, 2, 3, 4, 5])
def test_make_exits_with_the_programs_own_code(makedir: Path, code: int) -> None:
    for target in ("plan", "activate", "apply", "runs", "replay-dlq", "eval", "build"):
        proc, got = make(makedir, target, code=code)
        assert got is not None and proc.returncode == code, (target, proc.stderr)
        assert "***" not in proc.stderr  # make adds no line of its own
    assert not list((makedir / ".make").glob("status-*"))  # each code file is read and removed


def test_parallel_targets_each_carry_their_own_code(makedir: Path) -> None:
    for plan, runs in ((0, 4), (3, 0)):
        proc, _ = make(
            makedir, "-j2", "plan", "runs", env={"DUMP_EXIT_PLAN": str(plan), "DUMP_EXIT_RUNS": str(runs)}
        )
        assert proc.returncode == plan + runs, proc.stderr


def test_without_a_compiler_makes_error_line_still_names_the_code(makedir: Path, tmp_path: Path) -> None:
    d = tmp_path / "nocc"
    shutil.copytree(makedir, d, ignore=shutil.ignore_patterns(".make"))
    (d / "program").write_text((makedir / "program").read_text())
    proc, got = make(d, "plan", "CC=false", code=3)
    assert got is not None and proc.returncode == 2 and "Error 3" in proc.stderr
    proc, got = make(d, "plan", "CC=false", code=0)
    assert got is not None and proc.returncode == 0
