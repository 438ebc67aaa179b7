"""A CLI that fits: make targets print nothing but their data (JSON pipes into a parser), `make help`
lists every parameter the Makefile reads, shell variables do not leak into runs, and the run summary
reads right at 80 columns in every mode."""

from __future__ import annotations

import io
import json
import re
import subprocess
from pathlib import Path

from rich.console import Console
from run_helpers import ROOT, subprocess_env

from activation.cli import main as cli
from activation.render import print_summary
from activation.run import run_activation
from activation.settings import ActivateSettings
from activation.summary import RunSummary
from core.config import load_settings


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", *args], cwd=ROOT, env=env or subprocess_env(), capture_output=True, text=True, timeout=600
    )


def test_make_help_lists_every_parameter_the_makefile_reads() -> None:
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")  # continuation lines joined
    params = set(re.findall(r"\$\(origin ([A-Z_]+)\)", makefile))
    params |= set(re.findall(r"\$\(call (?:flag|switch),([A-Z_]+),", makefile))
    for names in re.findall(r"^[A-Z_]+_PARAMS := (.+)$", makefile, flags=re.M):
        params |= set(re.findall(r"\b[A-Z][A-Z_]+\b", names)) - {"PLAN_PARAMS"}
    params |= set(re.findall(r"^FROM_ENVIRONMENT := (.+)$", makefile, flags=re.M)[0].split())
    assert {
        "OUTPUT",
        "AS_OF",
        "FORCE",
        "LIMIT",
        "BASELINE",
        "SAMPLE",
        "CUSTOMER_ID",
        "PLAN",
        "PROMPT",
    } <= params
    assert {"CUSTOMERS", "SEED", "DATA_AS_OF", "DAYS", "BI_INCLUDE_PII", "SKIP_UNKNOWN"} <= params
    out = make("-s", "help").stdout
    missing = sorted(p for p in params if f"{p}=" not in out)
    assert not missing, missing
    assert "\033[" not in out  # no colour codes when stdout is not a terminal


def test_make_targets_print_nothing_but_json(warehouse_copy: Path) -> None:
    # a user's shell: not inside another make (`make test` is one: its MAKELEVEL would add
    # "Entering directory" lines, which only -s or --no-print-directory silence)
    env = {k: v for k, v in subprocess_env().items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    runs = (
        (["-s", "activate", "OUTPUT=json", "LIMIT=20"], {**env, "MAKELEVEL": "1"}),
        (["activate", "OUTPUT=json", "LIMIT=20"], env),
    )
    for args, run_env in runs:
        proc = make(*args, env=run_env)
        assert proc.returncode == 0, proc.stderr
        summary = json.loads(proc.stdout)  # the whole of stdout is one JSON document
        assert summary["status"] == "completed" and summary["dry_run"] is True and summary["decisions"] == 20
    # a shell's own OUTPUT (or LIMIT...) is not a make parameter: the table, all customers, and a
    # line saying they were ignored (MODE and the origin README's others count: test_make_params.py)
    proc = make("-s", "plan", env={**env, "OUTPUT": "json", "LIMIT": "3"})
    assert proc.returncode == 0 and proc.stdout.startswith("plan ") and " 599 decisions" in proc.stdout
    assert proc.stderr.splitlines()[0] == (
        "make plan: ignored from the environment (they count on make's command line only): LIMIT OUTPUT"
    )
    explain = make("-s", "explain", env=env)
    assert explain.returncode == 2 and "CUSTOMER_ID=" in explain.stderr and explain.stdout == ""


def test_the_console_script_lists_every_command_with_the_makes_defaults(capsys) -> None:
    assert cli(["--help"]) == 0
    out = capsys.readouterr().out
    for command in (
        "plan",
        "apply",
        "activate",
        "explain",
        "runs",
        "status",
        "replay-dlq",
        "simulate-outcomes",
    ):
        assert re.search(rf"^\s+{command}\s", out, flags=re.M), command
    assert cli(["--version"]) == 0 and re.fullmatch(r"\d+\.\d+\.\d+\S*\n", capsys.readouterr().out)
    assert cli(["activate", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--dry-run / --live" in text and "[default: rules]" in text and "[default: --dry-run]" in text


def render(s: RunSummary) -> str:
    buf = io.StringIO()
    print_summary(s, Console(file=buf, width=80, color_system=None))
    text = buf.getvalue()
    too_long = [line for line in text.splitlines() if len(line) > 80]
    assert not too_long, too_long
    return text


def test_the_summary_fits_80_columns_in_every_mode(warehouse_copy: Path) -> None:
    rules = run_activation(load_settings(ActivateSettings, dry_run=True))
    text = render(rules)
    for seg in rules.by_segment:
        assert re.search(rf"^{seg} +\d", text, flags=re.M), seg  # full names, never cut
    assert "…" not in text and "(none)" not in text
    assert "LLM" not in text and "learned model" not in text and "promotion gate" not in text
    head = re.search(r"^segment +send +suppressed +deferred +holdout +no action$", text, flags=re.M)
    assert head, text  # titles on one line
    assert f"make apply PLAN={rules.run_id}" in text

    llm = rules.model_copy(
        update={"mode": "llm", "model": "smollm2-135m-instruct", "prompt_version": "v1", "llm_calls": 361,
                "cache_hits": 12, "prompt_tokens": 412_000, "completion_tokens": 41_500, "llm_latency_s": 1877.0,
                "fallbacks": {"invalid_output": 80, "timeout": 3}, "policy_identity": "llm:v1@smollm2-135m-instruct"}
    )  # fmt: skip
    text = render(llm)
    assert "LLM: smollm2-135m-instruct, prompt v1; 361 calls, 12 cached" in text
    assert (
        "22.1 tokens/s per call" in text and "fallbacks to rules: 83 (invalid_output 80, timeout 3)" in text
    )

    learned = rules.model_copy(
        update={"mode": "learned", "model": "gbm-7a7a87d2f35aaec0", "policy_stats": {"model_trained": 0},
                "policy_identity": "learned@gbm-75baffb63dfe"}
    )  # fmt: skip
    text = render(learned)
    assert "learned model: gbm-7a7a87d2f35aaec0 (reused" in text and "LLM" not in text

    live = rules.model_copy(
        update={"dry_run": False, "plan": {}, "plan_file": None, "promotion_gate": "promotion gate passed: rules is "
                "the policy in place", "destinations": {d: {"planned": 285, "delivered": 280, "failed": 5}
                                                        for d in ("hubspot", "salesforce", "webhook")}}
    )  # fmt: skip
    text = render(live)
    assert "promotion gate passed" in text and re.search(r"^hubspot +285 +280 +5$", text, flags=re.M)
    assert "make apply" not in text
