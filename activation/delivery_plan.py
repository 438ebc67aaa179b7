"""What one destination's part of a run (or a replay) sends, and what it skips and why, from the
delivery state alone: pure except for the reads `plan_replay` makes.

The exactly-once rules, whatever the decision-id scheme:
- a (decision, destination) has one payload for ever once it may have reached the destination
  (pending, failed, delivered): a different payload under that id is a `conflict`, refused;
- a row already delivered with the same payload is `unchanged`; one still outstanding is re-sent
  with its stored payload (never twice in a run);
- a customer with a decision outstanding on any destination gets no other decision (`held`) until it
  is delivered or dead-lettered: the outstanding one goes first;
- a dead letter may be replaced by a corrected payload (the destination rejected, so never stored,
  the first one); the replaced dead letter is closed so no replay can send it later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import duckdb

from activation.destinations.base import OutboundItem
from activation.state import LogStatus, StateRow, load_state, superseding_decision


@dataclass
class Plan:
    send: list[OutboundItem] = field(default_factory=list)  # outstanding rows first, then new ones
    retried: list[OutboundItem] = field(default_factory=list)  # the outstanding rows of earlier runs
    skipped: list[tuple[OutboundItem, LogStatus, str]] = field(default_factory=list)
    replaces: list[str] = field(default_factory=list)  # decisions whose dead letter a new payload replaces


def _held_by(backlog: Sequence[StateRow]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for row in backlog:
        out.setdefault(row.customer_id, set()).add(row.decision_id)
    return out


def plan_destination(
    destination: str,
    items: Sequence[OutboundItem],
    state: Mapping[str, StateRow],
    backlog: Sequence[StateRow],
) -> Plan:
    """`items`: this run's items for `destination`; `state`: its delivery state for them (and its
    outstanding rows); `backlog`: the outstanding rows of every destination of the run."""
    plan = Plan(retried=[row.item() for row in backlog if row.destination == destination])
    held_by = _held_by(backlog)
    new: list[OutboundItem] = []
    for it in items:
        row = state.get(it.decision_id)
        if row is not None and row.payload_hash == it.payload_hash:
            if row.status == "delivered":
                plan.skipped.append((it, "unchanged", "already delivered with this payload"))
            elif row.status == "dead_letter":
                reason = "unchanged since it was dead-lettered: replay it (make replay-dlq) or change it"
                plan.skipped.append((it, "dead_letter", reason))
            # else: outstanding, already in plan.retried with this very payload
            continue
        if row is not None and row.status != "dead_letter":
            verb = "delivered to" if row.status == "delivered" else "sent to"
            reason = (
                f"conflict: decision {it.decision_id} was already {verb} {destination} with another payload "
                f"({row.payload_hash[:12]}); this one ({it.payload_hash[:12]}) is refused: a second, "
                "different action needs a new decision id"
            )
            plan.skipped.append((it, "conflict", reason))
            continue
        others = sorted(held_by.get(it.customer_id, set()) - {it.decision_id})
        if others:
            reason = (
                f"held: customer {it.customer_id} has decision {others[0]} outstanding; it is re-sent "
                "first and this decision is not sent"
            )
            plan.skipped.append((it, "held", reason))
            continue
        if row is not None:  # a dead letter, corrected
            plan.replaces.append(it.decision_id)
        new.append(it)
    plan.send = plan.retried + new
    return plan


def plan_replay(
    con: duckdb.DuckDBPyConnection,
    destination: str,
    backlog: Sequence[StateRow],
    dead: Sequence[OutboundItem],
) -> tuple[Plan, list[tuple[str, str]]]:
    """A replay re-sends the outstanding rows and the dead letters that are still owed; returns the
    plan and the dead letters to close without a send, with why."""
    plan = Plan(retried=[row.item() for row in backlog])
    owed = {it.decision_id for it in plan.retried}
    state = load_state(con, destination, [it.decision_id for it in dead])
    closed: list[tuple[str, str]] = []
    letters: list[OutboundItem] = []
    for it in dead:
        if it.decision_id in owed:
            continue  # outstanding: re-sent as such, with the payload the state holds
        row = state.get(it.decision_id)
        if row is not None and row.payload_hash != it.payload_hash:
            closed.append((it.decision_id, f"replaced by payload {row.payload_hash[:12]}"))
        elif row is not None and row.status == "delivered":
            closed.append((it.decision_id, "already delivered"))
        elif later := superseding_decision(con, it):
            closed.append((it.decision_id, f"superseded by decision {later}"))
        else:
            letters.append(it)
    plan.send = plan.retried + letters
    return plan, closed
