"""Golden cases: a CustomerContext per segment and consent pattern, with what any policy must do.

The file (golden.json) holds one base context and per-case overrides (merged one level deep), so
each case states only what makes it different. What is pinned: the template family for the
segment, the discount cap of the allowed templates, the channel under the consent pattern (only
sms consent -> sms), and no action when nobody may be contacted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.contracts import Channel, CustomerContext, Decision, Model

GOLDEN_FILE = Path(__file__).with_name("golden.json")


class GoldenExpectation(Model):
    families: list[str]  # allowed template_id prefixes (empty when no action is expected)
    max_discount_pct: float
    channel: Channel | None = None  # None: any consented channel
    acts: bool = True


class GoldenCase(Model):
    name: str
    context: CustomerContext
    expect: GoldenExpectation


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = {**base[k], **v} if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def load_golden(path: Path = GOLDEN_FILE) -> list[GoldenCase]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return [
        GoldenCase.model_validate(
            {"name": c["name"], "context": _merge(raw["base_context"], c["context"]), "expect": c["expect"]}
        )
        for c in raw["cases"]
    ]


def check_case(case: GoldenCase, decision: Decision | None) -> list[str]:
    """Readable failures of one decision against its golden case (empty list: passed)."""
    exp = case.expect
    if decision is None:
        return [f"{case.name}: no decision returned"]
    acts = decision.status in ("send", "deferred")
    if not exp.acts:
        return (
            [f"{case.name}: expected no action, got {decision.status} {decision.template_id}"] if acts else []
        )
    if not acts:
        return [f"{case.name}: expected an action, got {decision.status} ({', '.join(decision.reasons)})"]
    failures = []
    if not str(decision.template_id).startswith(tuple(exp.families)):
        failures.append(f"{case.name}: template {decision.template_id} not in families {exp.families}")
    if decision.discount_pct > exp.max_discount_pct + 1e-9:
        failures.append(f"{case.name}: discount {decision.discount_pct:g}% > cap {exp.max_discount_pct:g}%")
    if exp.channel and decision.channel != exp.channel:
        failures.append(f"{case.name}: channel {decision.channel}, expected {exp.channel}")
    if decision.channel and not case.context.consent.allows(decision.channel):
        failures.append(f"{case.name}: channel {decision.channel} without consent")
    return failures


def check_cases(cases: Sequence[GoldenCase], decisions: Sequence[Decision]) -> dict[str, list[str]]:
    by_customer = {d.customer_id: d for d in decisions}
    return {c.name: check_case(c, by_customer.get(c.context.customer_id)) for c in cases}
