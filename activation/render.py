"""Terminal rendering (rich) of a run summary, a plan, the run history and the warehouse's status.

Everything fits an 80-column terminal: compact tables without side borders, headings as plain
lines (never a table title that wraps), short column names, and lines that only appear when they
say something (LLM figures in LLM mode, the learned model in learned mode, the promotion gate on
live runs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from activation.plan import describe_changes
from activation.summary import RunSummary
from core.policy_kinds import kind
from guardrails.checks import label
from guardrails.checks.words import when

STATUS_HEADS = {"send": "send", "suppressed": "suppressed", "deferred": "deferred", "holdout": "holdout",
                "no_action": "no action"}  # fmt: skip
DELIVERY_KEYS = ("planned", "retried", "delivered", "unchanged", "failed", "dead_letter", "conflict", "held")
DELIVERY_HEADS = {"dead_letter": "dead letter"}
PLAN_OPS = ("create", "update", "unchanged", "retry", "held", "conflict", "dead_letter")


def table(*columns: str, right: Sequence[str] = ()) -> Table:
    # one space of padding plus the box's column separator: two spaces between columns
    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 0, 0, 1), header_style="bold")
    for c in columns:
        t.add_column(c, justify="right" if c in right else "left", no_wrap=True)
    return t


def _as_of(text: str) -> str:
    try:
        return when(datetime.fromisoformat(text))
    except ValueError:
        return text


def _counts(c: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {label(k)}" for k, n in c.items() if n)


def _print_llm_stopped(s: RunSummary, console: Console) -> None:
    """At the top: the LLM could not keep up and the run stopped asking it (agent/llm_flow.py)."""
    stopped = s.fallbacks.get("llm_stopped", 0)
    if not stopped:
        return
    failed = sum(n for k, n in s.fallbacks.items() if k != "llm_stopped")
    _para(
        console,
        f"The LLM could not keep up: after {failed} failed requests the run stopped asking it, and "
        f"{stopped} decisions fell back to the rules without a call. Use a faster endpoint "
        "(OPENAI_BASE_URL), a longer NBA_LLM__TIMEOUT_S, or fewer customers (SEGMENT=).",
        indent=0,
    )


def print_summary(s: RunSummary, console: Console | None = None) -> None:  # noqa: C901 - one section each
    console = console or Console()
    _print_heading(s, console)
    _print_llm_stopped(s, console)
    console.print()
    t = table("segment", *STATUS_HEADS.values(), right=list(STATUS_HEADS.values()))
    for seg, counts in sorted(s.by_segment.items()):
        t.add_row(seg, *(str(counts.get(st, 0)) for st in STATUS_HEADS))
    t.add_row("[b]total[/b]", *(f"[b]{s.counts.get(st, 0)}[/b]" for st in STATUS_HEADS))
    console.print(t)
    _print_not_sent(s, console)
    console.print()
    sends = s.outcomes.get("send", {})
    if s.counts.get("send"):
        fixes = {k: n for k, n in sends.items() if k != "as proposed"}
        how = f"{sends.get('as proposed', 0)} as proposed" + (f", {_counts(fixes)}" if fixes else "")
        console.print(f"sends: {s.counts['send']} ({how})")
    if kind(s.mode).needs_endpoint:
        fallbacks = sum(s.fallbacks.values())
        why = f" ({escape(', '.join(f'{k} {v}' for k, v in s.fallbacks.items()))})" if fallbacks else ""
        # per call: the calls run side by side (one per server slot), so the run goes faster than this
        rate = f", {s.completion_tokens / s.llm_latency_s:.1f} tokens/s per call" if s.llm_latency_s else ""
        console.print(
            f"LLM: {escape(s.model or '')}, prompt {s.prompt_version}; {s.llm_calls} calls, {s.cache_hits} cached"
        )
        console.print(f"     tokens {s.prompt_tokens} in + {s.completion_tokens} out{rate}")
        console.print(f"     fallbacks to rules: {fallbacks}{why}")
    elif kind(s.mode).learns_from_log:
        trained = s.policy_stats.get("model_trained")
        how = (
            " (trained for this run)"
            if trained
            else " (reused: the warehouse is unchanged)"
            if trained == 0
            else ""
        )
        recipe = (s.policy_identity or "").partition("@")[2]
        of = f", recipe {escape(recipe)} (the promotion gate's key)" if recipe else ""
        _para(console, f"learned model: {escape(s.model or '')}{how}{of}", indent=0)
    if s.promotion_gate:
        _para(console, s.promotion_gate, indent=0)
    if s.dry_run and s.plan:
        console.print()
        print_plan_counts(s.plan, console)
    elif s.destinations and not s.dry_run:
        console.print()
        keys = [k for k in DELIVERY_KEYS if any(v.get(k) for v in s.destinations.values())] or ["planned"]
        heads = [DELIVERY_HEADS.get(k, k) for k in keys]
        d = table("destination", *heads, right=heads)
        for name, counts in sorted(s.destinations.items()):
            d.add_row(name, *(str(counts.get(k, 0)) for k in keys))
        console.print(d)
    for note in s.notes:
        _para(console, note, indent=0)
    if s.dry_run and s.plan_file:
        console.print(f"per customer: {escape(s.plan_file)}", overflow="fold")
        console.print(f"send exactly this plan: make apply PLAN={s.run_id}")
        console.print(f"  (valid until {s.plan_valid_until}, while the warehouse is unchanged)")
    console.print(f"elapsed: {s.elapsed_s:.1f} s")


def _print_heading(s: RunSummary, console: Console) -> None:
    """What ran: plan or live run, the run id, the policy and the settings that shape a decision."""
    kind = "plan" if s.dry_run else "live run"
    segment = "all segments" if s.segment == "all" else s.segment
    console.print(f"[b]{kind}[/b] {escape(s.run_id)}: {s.decisions} decisions, {segment}", overflow="fold")
    if s.applied_plan:
        console.print(f"sends exactly plan {s.applied_plan} (nba-activate apply)")
    parts = [
        s.policy_identity or s.mode,
        f"goal {s.guardrails.goal}",
        f"as of {_as_of(s.as_of)}",
        f"cap {s.guardrails.discount_cap:g}%",
        f"window {s.guardrails.suppress_hours:g} h",
    ]
    lines = [""]
    for part in parts:  # wrap between the parts, never inside one
        joined = f"{lines[-1]} · {part}" if lines[-1] else part
        if lines[-1] and len(joined) > console.width:
            lines.append(part)
        else:
            lines[-1] = joined
    for line in lines:
        console.print(escape(line), overflow="fold")


def _print_not_sent(s: RunSummary, console: Console) -> None:
    """Each decision that sends nothing, counted once under the check that decided it."""
    not_sent = [(st, check, n) for st, by in s.outcomes.items() if st != "send" for check, n in by.items()]
    if not not_sent:
        return
    console.print()
    console.print("[b]not sent[/b], each decision once, by the check that decided it")
    r = table("status", "decided by", "decisions", right=["decisions"])
    for st, check, n in not_sent:
        r.add_row(STATUS_HEADS.get(st, st), label(check), str(n))
    console.print(r)


def print_plan_counts(plan: Mapping[str, Mapping[str, int]], console: Console) -> None:
    ops = [op for op in PLAN_OPS if any(c.get(op) for c in plan.values())] or ["create"]
    console.print("[b]plan[/b] per destination (update: a record we delivered before changes)")
    t = table("destination", *ops, right=ops)
    for dest, counts in plan.items():
        t.add_row(dest, *(str(counts.get(op, 0)) for op in ops))
    console.print(t)


STATUS_SHORT = {"blocked_by_circuit_breaker": "blocked"}


def print_replay(result: Mapping[str, Any], status: str, console: Console | None = None) -> None:
    """`replay-dlq`'s outcome: what was owed and re-sent, per destination."""
    console = console or Console()
    dests = result.get("destinations") or {}
    # planned: dead letters replayed; retried: rows a live run still owed (pending, failed)
    total = sum(int(v.get("planned", 0)) + int(v.get("retried", 0)) for v in dests.values())
    console.print(f"replay {escape(str(result.get('run_id')))}: {status}, {total} row(s) owed")
    if not total:
        console.print("nothing owed: every row of every live run is delivered or closed")
        return
    keys = [k for k in DELIVERY_KEYS if k != "planned" and any(v.get(k) for v in dests.values())]
    heads = ["dead letters", *(DELIVERY_HEADS.get(k, k) for k in keys)]
    d = table("destination", *heads, right=heads)
    for name, counts in sorted(dests.items()):
        d.add_row(name, str(counts.get("planned", 0)), *(str(counts.get(k, 0)) for k in keys))
    console.print(d)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return (
        f"{seconds:.0f}s"
        if seconds < 120
        else f"{seconds / 60:.0f}m"
        if seconds < 7200
        else f"{seconds / 3600:.0f}h"
    )


def print_runs(runs: Sequence[Mapping[str, Any]], console: Console | None = None) -> None:
    console = console or Console()
    if not runs:
        console.print("no runs yet: make plan (a dry run) or make activate")
        return
    nums = ["sends", "deliv.", "failed", "time"]
    t = table("run", "kind", "mode", "status", *nums, right=nums)
    for r in runs:
        status = r["status"] or "?"
        style = "red" if status in ("failed", "blocked_by_circuit_breaker", "error", "abandoned") else ""
        style = "yellow" if status == "partial" else style
        shown = STATUS_SHORT.get(status, status)
        t.add_row(
            escape(r["run_id"]),
            r["kind"],
            escape(r["mode"] or ""),
            f"[{style}]{shown}[/{style}]" if style else shown,
            str(r["send"]),
            "-" if r["kind"] == "plan" else str(r["delivered"]),
            "-" if r["kind"] == "plan" else _not_delivered(r),
            _duration(r["duration_s"]),
        )
    console.print(t)
    notes = ["sends: send decisions; deliv./failed: rows (decision x destination)"]
    if any(r["status"] == "blocked_by_circuit_breaker" for r in runs):
        notes.append("blocked: the circuit breaker refused the send volume (FORCE=1 overrides)")
    if any(r["status"] == "abandoned" for r in runs):
        notes.append(
            "abandoned: its process ended mid-run (killed); the next live run or make replay-dlq re-sends "
            "what it owes"
        )
    for note in notes:
        _para(console, note, indent=0)


def _not_delivered(run: Mapping[str, Any]) -> str:
    """The `failed` cell: rows not delivered. What an abandoned run still owes (it died before sending
    them, or before it could retry them) is not a failure: shown apart as owed."""
    owed = int(run.get("owed") or 0)
    if run["status"] != "abandoned" or not owed:
        return str(run["not_delivered"])
    return f"{int(run['not_delivered']) - owed}, {owed} owed"


def _outcome(run: Mapping[str, Any]) -> str:
    if run["status"] == "abandoned":
        return (
            f"abandoned (its process ended mid-run), {run['delivered']} rows delivered, "
            f"{run.get('owed', 0)} owed"
        )
    return f"{run['status']}, {run['delivered']} rows delivered, {run['not_delivered']} not"


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


def running_line(busy: str, progress: Mapping[str, Any] | None) -> str:
    """`running: run X (...): deciding (LLM calls) 40/152 (26%), 3m10s elapsed, about 9m left`."""
    if not progress:
        return f"running: {busy}"
    done, total = int(progress.get("done") or 0), int(progress.get("total") or 0)
    count = f" {done}/{total} ({100 * done / total:.0f}%)" if total else ""
    left = progress.get("left_s")
    estimate = f", about {_clock(left)} left in this step" if left is not None and done < total else ""
    return (
        f"running: {busy}: {progress.get('step')}{count}, {_clock(progress.get('elapsed_s') or 0)} "
        f"elapsed{estimate}"
    )


def print_status(info: Mapping[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    if info.get("busy"):
        _para(console, running_line(info["busy"], info.get("progress")), indent=0)
        if "latest" not in info:  # the warehouse stayed open for writing longer than status waits
            _para(console, "the warehouse is being written: try again in a moment", indent=0)
            return
    latest = info.get("latest")
    if latest is None:
        console.print("no runs yet: make plan (a dry run) or make activate")
    elif latest["kind"] == "plan" and latest["status"] == "completed":
        _para(
            console,
            f"latest run {latest['run_id']}: a plan ({latest['mode']}), {latest['send']} sends",
            indent=0,
        )
    else:
        _para(console, f"latest run {latest['run_id']} ({latest['kind']}, {latest['mode']}): {_outcome(latest)}",
              indent=0)  # fmt: skip
    live = info.get("last_live")
    if live and latest and live["run_id"] != latest["run_id"]:
        _para(console, f"last live run {live['run_id']}: {_outcome(live)}", indent=0)
    owed = info.get("owed") or {}
    if owed:
        console.print()
        heads = ["pending", "failed", "dead letter"]
        t = table("owed to", *heads, right=heads)
        for dest, c in owed.items():
            t.add_row(dest, str(c.get("pending", 0)), str(c.get("failed", 0)), str(c.get("dead_letter", 0)))
        console.print(t)
        _para(console, "the next live run re-sends pending and failed rows first; make replay-dlq sends them "
              "and the dead letters now", indent=0)  # fmt: skip
    else:
        console.print("nothing owed: every row of every live run is delivered or closed")
    _print_deferred(console, info.get("deferred") or {})
    plan = info.get("plan")
    if plan:
        until = f" (valid until {plan['valid_until']})" if plan.get("valid_until") else ""
        _para(console, f"plan waiting to be applied: {plan['run_id']}{until}", indent=0)
        console.print(f"  make apply PLAN={plan['run_id']}")


def _print_deferred(console: Console, deferred: Mapping[str, Any]) -> None:
    """Deferred decisions owed: each goes out with the first live run at or after its send-at time."""
    n = int(deferred.get("count") or 0)
    if not n:
        return
    console.print()
    t = table("deferred, owed", "channel", "send at (UTC)", "decision", right=[])
    for r in deferred.get("rows", []):
        t.add_row(r["customer_id"], r["channel"] or "", r["send_at"], r["decision_id"])
    console.print(t)
    shown = len(deferred.get("rows", []))
    more = (
        f" (first {shown} shown; send-at {deferred['first_send_at']} to {deferred['last_send_at']})"
        if n > shown
        else ""
    )
    _para(console, f"{n} deferred decision(s) owed{more}: the first live run (make activate DRY_RUN=0, make "
          "apply, the daily DAG) at or after a row's send-at time sends it if it is still eligible, "
          "or closes it with the reason", indent=0)  # fmt: skip


MARK = {"pass": "[green]✓[/green]", "fixed": "[yellow]~[/yellow]", "failed": "[red]✗[/red]"}


def _value(v: Any, width: int = 30) -> str:
    if v is None or v == "" or v == []:
        return "-"
    if isinstance(v, str) and len(v) >= 19 and v[4:5] == "-" and v[10:11] == "T":
        try:
            return when(datetime.fromisoformat(v))
        except ValueError:
            pass
    text = ", ".join(map(str, v)) if isinstance(v, list) else str(v)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _para(console: Console, text: str, indent: int = 2) -> None:
    """A paragraph wrapped to the console, indented on every line."""
    import textwrap

    pad = " " * indent
    width = max(40, (console.width or 80) - 1)
    console.print(textwrap.fill(text, width=width, initial_indent=pad, subsequent_indent=pad + "  "),
                  markup=False, highlight=False)  # fmt: skip


def _steps(steps: Sequence[Mapping[str, Any]], console: Console) -> None:
    t = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1))
    t.add_column(width=1, no_wrap=True)
    t.add_column(no_wrap=True)
    t.add_column(overflow="fold")
    for st in steps:
        text = escape(st["words"])
        shown = st["before"] not in (None, "", []) or st["after"] not in (None, "", [])
        if shown and (st["verdict"] != "pass" or st["check"] == "discount_clamp"):
            text += (
                f"\n[dim]before {escape(_value(st['before']))} → after {escape(_value(st['after']))}[/dim]"
            )
        t.add_row(MARK.get(st["verdict"], "?"), escape(st["check"]), text)
    console.print(t)


def print_explanation(x: Mapping[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    _explain_segment(x, console)
    if "decision" not in x:
        return
    _explain_eligibility(x, console)
    _explain_proposal(x, console)
    d = x["decision"]
    _explain_decision(d, console)
    _explain_deliveries(x["deliveries"], d["status"], console)
    prompt = x.get("prompt")
    if prompt:
        _explain_prompt(prompt, console)


def _explain_segment(x: Mapping[str, Any], console: Console) -> None:
    """Who the customer is, where the decision comes from, and the segment with why and its scores."""
    seg = x["segment"]
    console.print(
        f"[b]{escape(x['customer_id'])}[/b] · {escape(str(seg['country']))} · {escape(str(seg['timezone']))}"
    )
    _para(console, f"decision from: {x['source']}", indent=0)
    console.print()
    console.print(f"[b]segment[/b]: {escape(seg['segment'] or 'none')}")
    _para(console, seg["why"])
    scores = [f"{k} {v:g}" for k, v in seg["scores"].items() if v]
    _para(console, "scores: " + (", ".join(scores) or "0 for every segment"))


def _explain_eligibility(x: Mapping[str, Any], console: Console) -> None:
    """The eligibility checks at the run's as-of, warned when the customer's data changed since."""
    run = x["run"]
    if run.get("context_unchanged") is False:
        console.print(
            "  [yellow]the customer's data changed since this decision (context hash differs)[/yellow]"
        )
    console.print()
    console.print(f"[b]eligibility[/b] at {run['as_of']}")
    _steps(x["eligibility"], console)


def _explain_proposal(x: Mapping[str, Any], console: Console) -> None:
    """What the policy proposed (or why nothing was asked) and, when it was asked, the guardrails."""
    p = x["proposal"]
    console.print()
    if not p["asked"]:
        console.print("[b]proposal[/b]: none asked for (not eligible: no policy or LLM call was made)")
    else:
        who = p["policy"] + (f" ({p['model']})" if p.get("model") else "")
        console.print(f"[b]proposal[/b] by {escape(who)}", overflow="fold")
        if p.get("no_proposal"):
            _para(console, f"no proposal: {p['no_proposal']}")
        elif p.get("template_id"):
            pct = f"{float(p['discount_pct']):g}%" if isinstance(p.get("discount_pct"), int | float) else "?"
            _para(
                console,
                f"{p['template_id']} on {p['channel']}, discount {pct}, propensity {p['propensity']:.3g}",
            )
        if p.get("refused_draft"):
            _para(console, f"refused draft: {_value(p['refused_draft'], 200)}")
        if p.get("fell_back_to_rules"):
            _para(console, f"fell back to the rules: {p['fell_back_to_rules']}")
        console.print()
        console.print("[b]guardrails[/b]")
        _steps(x["guardrails"], console)


def _explain_decision(d: Mapping[str, Any], console: Console) -> None:
    """The decision's status and why; when it has a channel, what it sends and when."""
    console.print()
    console.print(f"[b]decision[/b] {escape(str(d['decision_id']))}: [b]{escape(d['status'])}[/b]")
    _para(console, d["why"])
    if d.get("channel"):
        _para(
            console,
            f"{d['template_id']} on {d['channel']}, discount {d['discount_pct']:g}%, by {d['policy']}",
        )
        if d.get("defer_until") and d["status"] != "deferred":
            console.print(f"  deferred to {d['defer_until']}")
        if d.get("subject"):
            _para(console, f"subject: {d['subject']}")
        _para(console, f"message: {d['message']}")


def _explain_deliveries(deliveries: Mapping[str, Any], status: str, console: Console) -> None:
    """What is planned per destination, the delivery state, the rows other decisions still owe the
    customer, or why there is nothing (`status` is the decision's)."""
    console.print()
    console.print("[b]deliveries[/b]")
    planned = deliveries.get("planned")
    if planned:
        for dest, e in planned.items():
            detail = describe_changes(e["changes"]) if e.get("changes") else e.get("why", "")
            _para(console, f"planned: {dest} {e['op']}" + (f": {detail}" if detail else ""))
    for r in deliveries["state"]:
        when_ = f", delivered {r['delivered_at']}" if r.get("delivered_at") else ""
        err = f": {r['last_error']}" if r.get("last_error") and r["status"] != "delivered" else ""
        console.print(
            f"  {r['destination']}: {r['status']}, {r['attempts']} request(s){when_}{err}", overflow="fold"
        )
    for o in deliveries["owed_by_other_decisions"]:
        _para(
            console,
            f"owed: {o['destination']} {o['status']} for decision {o['decision_id']} (run {o['run_id']}): "
            "re-sent first; this customer gets nothing else until it is delivered",
        )
    if not planned and not deliveries["state"] and not deliveries["owed_by_other_decisions"]:
        sent = "nothing to deliver" if status != "send" else "not sent yet (a plan: make apply PLAN=...)"
        console.print(f"  none: {sent}")


def _explain_prompt(prompt: Mapping[str, Any], console: Console) -> None:
    """The LLM prompt of the decision's version, as the model sees (or would see) it."""
    console.print()
    note = (
        ""
        if prompt["eligibility"] in ("send", "deferred")
        else (
            f" (not eligible now: {prompt['eligibility']}; no LLM call is made for them: this is what the model "
            "would see if they were)"
        )
    )
    console.print(
        f"[b]LLM prompt[/b] agent/prompts/nba/{escape(prompt['version'])}{escape(note)}", overflow="fold"
    )
    console.print("[dim]# system[/dim]")
    console.print(prompt["system"], markup=False, highlight=False)
    console.print("[dim]# user[/dim]")
    console.print(prompt["user"], markup=False, highlight=False)
