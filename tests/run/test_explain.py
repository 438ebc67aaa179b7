"""`explain` for a sent, a suppressed, a deferred and a held-out customer, read from the ops tables
of real runs (a plan, then its apply against the local servers), rendered at 80 columns."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from run_helpers import query

from activation.apply import apply_plan
from activation.cli import main as cli
from activation.explain import explain, rendered_prompt
from activation.render import print_explanation
from activation.run import run_activation
from activation.runs import read_only
from activation.settings import ActivateSettings
from core.config import load_settings


def render(x: dict) -> str:
    buf = io.StringIO()
    print_explanation(x, Console(file=buf, width=80, color_system=None))
    text = buf.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80, text
    return text


def first(db: Path, run_id: str, status: str) -> str:
    return query(
        db, "select min(customer_id) from ops.decision_log where run_id = ? and status = ?", [run_id, status]
    )[0][0]


@pytest.fixture
def applied(warehouse_copy: Path, servers) -> tuple[str, str]:
    plan = run_activation(load_settings(ActivateSettings, dry_run=True, limit=100))  # every status among them
    live = apply_plan(load_settings(ActivateSettings, dry_run=False), plan.run_id)
    return plan.run_id, live.run_id


def test_explain_a_sent_a_suppressed_a_deferred_and_a_held_out_customer(
    warehouse_copy: Path, applied
) -> None:
    plan_id, live_id = applied
    settings = load_settings(ActivateSettings)
    with read_only() as con:
        sent = explain(con, first(warehouse_copy, live_id, "send"), settings=settings)
        suppressed = explain(con, first(warehouse_copy, live_id, "suppressed"), settings=settings)
        deferred = explain(con, first(warehouse_copy, live_id, "deferred"), settings=settings)
        held_out = explain(con, first(warehouse_copy, live_id, "holdout"), settings=settings)
        planned = explain(con, sent["customer_id"], settings=settings, run_id=plan_id)

    # sent: the latest run (the apply), every guardrail step, delivered to each destination
    assert sent["source"] == f"live run {live_id}" and sent["decision"]["status"] == "send"
    assert [s["check"] for s in sent["eligibility"]][:2] == ["holdout", "global_suppression"]
    assert sent["proposal"]["asked"] and sent["proposal"]["template_id"] == sent["decision"]["template_id"]
    assert {s["check"] for s in sent["guardrails"]} >= {"action_bank", "discount_clamp", "message"}
    assert {r["destination"]: r["status"] for r in sent["deliveries"]["state"]} == dict.fromkeys(
        ("hubspot", "salesforce", "webhook"), "delivered"
    )
    text = render(sent)
    assert "delivered" in text and sent["decision"]["template_id"] in text and "segment:" in text
    assert "✓  discount_clamp" in text and "before " in text

    # the plan's view of the same customer: what was planned per destination
    assert planned["source"] == f"plan (dry run) {plan_id}"
    assert {d: e["op"] for d, e in planned["deliveries"]["planned"].items()} == dict.fromkeys(
        ("hubspot", "salesforce", "webhook"), "create"
    )
    assert "planned: hubspot create" in render(planned)

    # suppressed: the check that blocked, in words; no policy was asked
    assert not suppressed["proposal"]["asked"] and suppressed["decision"]["status"] == "suppressed"
    failed = [s for s in suppressed["eligibility"] if s["verdict"] == "failed"]
    assert failed and suppressed["decision"]["why"] == "; ".join(
        s["words"] for s in failed if s["check"] != "holdout"
    )
    text = render(suppressed)
    assert "proposal: none asked for" in text and "nothing to deliver" in text

    # deferred: quiet hours, with the customer's local time and when it may be sent
    assert deferred["decision"]["status"] == "deferred"
    assert (
        "quiet hours" in deferred["decision"]["why"]
        and "deferred to 2026-11-2" in deferred["decision"]["why"]
    )
    assert f"in {deferred['segment']['timezone']})" in deferred["decision"]["why"]
    render(deferred)

    # held out: the arm, the share, why it is never contacted
    assert held_out["decision"]["status"] == "holdout"
    assert "never contacted" in held_out["decision"]["why"]
    assert "✗  holdout" in render(held_out)


def test_explain_one_line_errors_a_customer_never_decided_and_the_prompt(
    warehouse_copy: Path, capsys
) -> None:
    assert cli(["explain"]) == 2
    assert "CUSTOMER_ID=" in capsys.readouterr().err
    assert cli(["explain", "--customer-id", "C9999999"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no customer 'C9999999'" in err[0]
    # no run has decided yet: decided now through the pipeline, nothing logged
    cid = query(
        warehouse_copy,
        "select min(customer_id) from main.mart_marketing__segment_scores where segment is not null",
    )[0][0]
    assert cli(["explain", "--customer-id", cid, "--output", "json"]) == 0
    x = json.loads(capsys.readouterr().out)
    assert x["source"].startswith("no run has decided for") and x["decision"]["status"]
    assert query(warehouse_copy, "select count(*) from ops.decision_log")[0][0] == 0
    # the LLM prompt on request: rendered (no model is started), eligibility first
    with read_only() as con:
        prompt = rendered_prompt(con, cid, settings=load_settings(ActivateSettings), prompt_version="v1")
    assert prompt["version"] == "v1" and cid not in prompt["system"] and prompt["user"]
    assert cli(["explain", "--customer-id", cid, "--prompt"]) == 0
    out = capsys.readouterr().out
    assert out.index("eligibility at") < out.index("LLM prompt") and "# user" in out
    # unsegmented customer: says so
    other = query(
        warehouse_copy,
        "select min(customer_id) from main.mart_marketing__segment_scores where segment is null",
    )[0][0]
    assert cli(["explain", "--customer-id", other]) == 0
    assert "in no segment" in capsys.readouterr().out


def test_hostile_text_is_printed_as_text(warehouse_copy: Path) -> None:
    """An LLM draft or a model name with rich markup in it prints literally and never breaks the output."""
    cid = query(
        warehouse_copy,
        "select min(customer_id) from main.mart_marketing__segment_scores where segment is not null",
    )[0][0]
    with read_only() as con:
        x = explain(con, cid, settings=load_settings(ActivateSettings))
    hostile = "[/b][red]Override guardrails[/red] [link=http://x]click[/link] [/dim]"
    x["proposal"].update(asked=True, refused_draft=hostile, model=hostile, template_id="t", channel="email")
    x["guardrails"] = [{"check": "message", "verdict": "failed", "before": hostile, "after": None,
                        "reason": "x", "words": f"draft refused ({hostile})"}]  # fmt: skip
    x["decision"]["message"] = hostile
    text = render(x)
    assert text.count("[red]Override guardrails[/red]") >= 3
