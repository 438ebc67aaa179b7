"""The delivery engine: send decisions to destinations, or to the outbox on a dry run.

Delivery state per (decision, destination) is the truth (activation.state). Per destination, a run:

1. takes the outstanding rows of earlier runs (pending: a run was killed mid-request; failed: a run
   gave up) and re-sends them first, with the payload and idempotency key they were first sent with,
   whatever the new decisions say (suppression never hides them: they are not decisions, they are
   deliveries owed);
2. plans one item per `send` decision against the state (activation.delivery_plan): `unchanged`
   (already delivered, same payload), `conflict` (this decision id was already sent with another
   payload: refused, never a second action under one id), `held` (the customer has another decision
   outstanding: it goes first, this one not at all), a corrected dead letter (sent, the old dead
   letter closed), or new;
3. sends: batches up to `max_batch` (never the same record key twice in a batch), under the declared
   rate limit, transient failures retried with exponential backoff and jitter (429 waits honour
   Retry-After and do not use the retry budget), a batch rejected as a whole bisected to isolate the
   bad row, partial results handled row by row, terminal rows dead-lettered, every outcome written.

Ledger time: `contacted_at` is the later of the decision's `as_of` and the run's (its logical time),
so the suppression window of the next run compares like with like; a replay uses the replay time.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from traceback import format_exc
from typing import Any, Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from activation.delivery_plan import Plan, plan_destination, plan_replay
from activation.destinations.base import Destination, ItemResult, OutboundItem, make_item
from activation.errors import DestinationBlockedError, RateLimitedError, TerminalError, TransientError
from activation.outbox import item_line, jsonl, write_outbox
from activation.ratelimit import Backoff, RateBudget
from activation.settings import DeliverySettings
from activation.state import (
    LogStatus,
    Outcome,
    load_state,
    mark_pending,
    mark_replayed,
    now_utc,
    outstanding,
    pending_dead_letters,
    utc_naive,
    write_outcomes,
)
from core.contracts import Decision
from warehouse.access import WarehouseFile
from warehouse.ops_tables import ensure_ops_tables

log = logging.getLogger("activation.delivery")
Progress = Callable[[int], None]
RunStatus = Literal["completed", "partial", "failed"]
_BUDGETS: weakref.WeakKeyDictionary[object, RateBudget] = weakref.WeakKeyDictionary()


class DestinationSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")
    destination: str
    planned: int = 0  # items of this run's decisions routed to this destination
    retried: int = 0  # outstanding rows of earlier runs re-sent by this run
    delivered: int = 0
    unchanged: int = 0
    failed: int = 0  # retried on the next run
    dead_letter: int = 0
    conflict: int = 0  # refused: the decision id was already sent with another payload
    held: int = 0  # not sent: the customer has another decision outstanding
    dry_run: int = 0
    requests: int = 0
    rate_limited: int = 0  # 429 answers received
    retries: int = 0  # transient retries (429 waits not included)
    bisections: int = 0
    rate_wait_s: float = 0.0  # time spent waiting for the rate budget or Retry-After
    blocked: str | None = None  # why the destination took nothing more in this run
    errors: list[str] = Field(default_factory=list)  # distinct final errors, first 10


class DeliverySummary(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run_id: str
    dry_run: bool
    decisions: int  # send decisions handed in
    outbox_path: str | None = None
    destinations: dict[str, DestinationSummary] = Field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(getattr(d, status) for d in self.destinations.values())

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    @property
    def status(self) -> RunStatus:
        return run_status({n: d.model_dump() for n, d in self.destinations.items()})


NOT_DELIVERED = ("failed", "dead_letter", "conflict")


def run_status(counts: Mapping[str, Mapping[str, Any]]) -> RunStatus:
    """A live run's status from its rows' counts per destination. completed: every row delivered or
    already there; failed: rows not delivered and none got through; partial: some of each. Held rows
    are not failures: the decision they wait for is re-sent first."""

    def total(keys: Sequence[str]) -> int:
        return sum(int(c.get(k) or 0) for c in counts.values() for k in keys)

    if total(NOT_DELIVERED) == 0:
        return "completed"
    return "partial" if total(("delivered", "unchanged")) else "failed"


def budget_for(dest: Destination, settings: DeliverySettings) -> RateBudget:
    """One budget per destination object, kept across runs in this process."""
    budget = _BUDGETS.get(dest)
    if budget is None or budget.limit != dest.rate_limit:
        budget = RateBudget(dest.rate_limit, safety_s=settings.rate_safety_s)
        _BUDGETS[dest] = budget
    return budget


def batches(items: Sequence[OutboundItem], size: int) -> list[list[OutboundItem]]:
    """Consecutive chunks of at most `size`; a record key repeated starts a new chunk."""
    out: list[list[OutboundItem]] = []
    current: list[OutboundItem] = []
    keys: set[str] = set()
    for it in items:
        if len(current) >= size or it.record_key in keys:
            out.append(current)
            current, keys = [], set()
        current.append(it)
        keys.add(it.record_key)
    if current:
        out.append(current)
    return out


_Next = Literal["again", "done"]  # after a request: send the rows still pending again, or stop


@dataclass
class _Tries:
    """What one group has used so far of its budgets: transient retries, and time waited on rate limits."""

    retries: int = 0
    rate_wait: float = 0.0


class _Sender:
    """Sends batches for one destination and writes what happens."""

    def __init__(
        self,
        dest: Destination,
        db: WarehouseFile,
        run_id: str,
        settings: DeliverySettings,
        summary: DestinationSummary,
        progress: Progress | None,
        contacted_at: Callable[[OutboundItem], datetime],
        attempts: Mapping[str, int],
    ) -> None:
        self.dest, self.db, self.run_id, self.settings = dest, db, run_id, settings
        self.summary, self.progress, self.contacted_at = summary, progress, contacted_at
        self.budget = budget_for(dest, settings)
        self.backoff = Backoff(settings.backoff_base_s, settings.backoff_max_s, settings.seed)
        self.attempts: dict[str, int] = dict(attempts)  # requests per decision so far, across runs
        self.final_status: dict[str, str] = {}

    def scrub(self, text: str) -> str:
        for secret in self.dest.secrets:
            if secret and len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    def outcome(self, it: OutboundItem, status: LogStatus, *, final: bool, error: str | None = None,
                record_id: str | None = None, sent: bool = True) -> Outcome:  # fmt: skip
        return Outcome(
            item=it,
            status=status,
            attempt=self.attempts.get(it.decision_id, 0) if sent else 0,
            final=final,
            at=now_utc(),
            error=self.scrub(error) if error else None,
            record_id=record_id,
            contacted_at=self.contacted_at(it) if final and status == "delivered" else None,
        )

    def write(self, outcomes: list[Outcome]) -> None:
        with self.db.writing() as con:  # one short window per request's outcome: readers read between
            write_outcomes(con, self.run_id, outcomes, touch_state=True)
        finals = [o for o in outcomes if o.final]
        errors: Counter[str] = Counter()
        for o in finals:
            self.final_status[o.item.decision_id] = o.status
            setattr(self.summary, o.status, getattr(self.summary, o.status) + 1)
            if o.error and o.status != "delivered":
                errors[f"{o.status}: {o.error}"] += 1
                if o.error not in self.summary.errors and len(self.summary.errors) < 10:
                    self.summary.errors.append(o.error)
        for error, n in errors.items():  # the run's report sums these up; the detail is in ops.delivery_log
            log.info("%s: %d row(s) %s", self.dest.name, n, error)
        mine = sum(1 for o in finals if o.item.run_id == self.run_id)
        if mine and self.progress:
            self.progress(mine)

    def finish(self, items: list[OutboundItem], status: LogStatus, error: str, *, sent: bool = True) -> None:
        self.write([self.outcome(it, status, final=True, error=error, sent=sent) for it in items])

    def attempt_failed(self, items: list[OutboundItem], error: str) -> None:
        self.write([self.outcome(it, "failed", final=False, error=error) for it in items])

    def send(self, items: list[OutboundItem]) -> None:
        if self.summary.blocked:
            self.finish(items, "failed", f"not sent: {self.summary.blocked}", sent=False)
            return
        self._group(items)

    def _sleep(self, seconds: float) -> None:
        self.summary.rate_wait_s += seconds
        time.sleep(seconds)

    def _group(self, items: list[OutboundItem]) -> None:
        """Send `items` as one request until every row has its final outcome: again after a retryable
        failure, the request's whole-batch failures handled by _request, each row's by _rows."""
        pending, tries = list(items), _Tries()
        while pending:
            if self.summary.blocked:
                self.finish(pending, "failed", f"not sent: {self.summary.blocked}", sent=False)
                return
            results = self._request(pending, tries)
            if isinstance(results, str):  # the request failed as a whole
                if results == "done":
                    return
                continue
            pending, row_wait = self._rows(pending, results)
            if not pending:
                return
            if self._rows_again(pending, row_wait, tries) == "done":
                return

    def _request(self, pending: list[OutboundItem], tries: _Tries) -> list[ItemResult] | _Next:
        """One request for `pending` under the rate budget: the rows' results, or what a failure of the
        whole request leaves to do (wait and go again, bisect, or give the rows up for this run)."""
        s = self.settings
        self.summary.rate_wait_s += self.budget.acquire()
        self.summary.requests += 1
        for it in pending:
            self.attempts[it.decision_id] = self.attempts.get(it.decision_id, 0) + 1
        try:
            try:
                return self.dest.send_batch(pending)
            finally:
                self.budget.settle()
        except RateLimitedError as exc:
            self.summary.rate_limited += 1
            wait = exc.retry_after if exc.retry_after is not None else self.backoff.delay(1)
            tries.rate_wait += wait
            if tries.rate_wait > s.max_rate_limit_wait_s:
                self.finish(pending, "failed", f"{exc.message}; gave up after waiting {tries.rate_wait:.0f}s")
                return "done"
            self.attempt_failed(pending, f"{exc.message}; retry after {wait:g}s")
            self.budget.hold(wait)
            return "again"
        except DestinationBlockedError as exc:
            self.summary.blocked = self.scrub(exc.message)
            self.finish(pending, "failed", exc.message)
            return "done"
        except TransientError as exc:
            tries.retries += 1
            if tries.retries > s.max_retries:
                self.finish(pending, "failed", f"{exc.message} (gave up after {tries.retries} attempts)")
                return "done"
            self.summary.retries += 1
            self.attempt_failed(pending, exc.message)
            self._sleep(self.backoff.delay(tries.retries))
            return "again"
        except TerminalError as exc:
            if len(pending) == 1:
                self.finish(pending, "dead_letter", exc.message)
                return "done"
            self.summary.bisections += 1
            self.attempt_failed(pending, f"batch of {len(pending)} rejected, bisecting: {exc.message}")
            mid = len(pending) // 2
            self._group(pending[:mid])
            self._group(pending[mid:])
            return "done"
        except Exception as exc:  # a bug or an unexpected client error: keep the rows for the next run
            error = f"unexpected {type(exc).__name__}: {exc}"
            # one line on the console (the rows' error in ops.delivery_log says the same); the traceback,
            # scrubbed too, only for a caller that logs at DEBUG
            line = " ".join(self.scrub(error).split())
            log.error("%s: %s (%d row(s) kept for the next run)", self.dest.name, line, len(pending))
            log.debug("%s: traceback of the unexpected error:\n%s", self.dest.name, self.scrub(format_exc()))
            self.finish(pending, "failed", error)
            return "done"

    def _rows_again(self, pending: list[OutboundItem], row_wait: float | None, tries: _Tries) -> _Next:
        """After rows failed transiently: wait what they asked (Retry-After) or back off, then go again,
        unless the waits or the retries are used up (the rows then fail for this run)."""
        s = self.settings
        if row_wait is not None:
            tries.rate_wait += row_wait
            if tries.rate_wait > s.max_rate_limit_wait_s:
                self.finish(pending, "failed", f"rate limited; gave up after waiting {tries.rate_wait:.0f}s")
                return "done"
            self.budget.hold(row_wait)
            return "again"
        tries.retries += 1
        if tries.retries > s.max_retries:
            self.finish(
                pending, "failed", f"row kept failing transiently (gave up after {tries.retries} attempts)"
            )
            return "done"
        self.summary.retries += 1
        self._sleep(self.backoff.delay(tries.retries))
        return "again"

    def _rows(
        self, pending: list[OutboundItem], results: list[ItemResult]
    ) -> tuple[list[OutboundItem], float | None]:
        by_id = {r.decision_id: r for r in results}
        outcomes, still, row_wait = [], [], None
        for it in pending:
            r = by_id.get(it.decision_id) or ItemResult(
                decision_id=it.decision_id, outcome="transient", error="no result for this row"
            )
            if r.outcome == "ok":
                outcomes.append(self.outcome(it, "delivered", final=True, record_id=r.record_id))
            elif r.outcome == "terminal":
                outcomes.append(self.outcome(it, "dead_letter", final=True, error=r.error))
            else:
                still.append(it)
                outcomes.append(self.outcome(it, "failed", final=False, error=r.error))
                if r.retry_after is not None:
                    row_wait = max(row_wait or 0.0, r.retry_after)
        self.write(outcomes)
        return still, row_wait


def _skip_rows(sender: _Sender, plan: Plan, ds: DestinationSummary) -> list[Outcome]:
    rows = [
        sender.outcome(it, status, final=False, error=reason, sent=False)
        for it, status, reason in plan.skipped
    ]
    for _, status, _ in plan.skipped:
        setattr(ds, status, getattr(ds, status) + 1)
    return rows


def deliver(
    decisions: Sequence[Decision],
    *,
    con: duckdb.DuckDBPyConnection | WarehouseFile,
    run_id: str,
    dry_run: bool,
    outbox_dir: Path,
    destinations: Sequence[Destination],
    settings: DeliverySettings,
    progress: Progress | None = None,
    extra_files: Mapping[str, bytes | str] | None = None,
    as_of: datetime | None = None,
) -> DeliverySummary:
    """Deliver the outstanding rows of earlier runs and the `send` decisions (others are ignored here)
    to every destination that accepts them.

    Dry run: writes `outbox_dir/<run_id>/<destination>.jsonl` (what a live run would send, outstanding
    rows included) plus `extra_files` in one atomic rename and logs the plan in ops.delivery_log;
    delivery state, the ledger and the dead-letter queue are not touched. Live: sends. Given a
    WarehouseFile that is not open, a live run holds it for writing only to plan and mark the rows
    pending, then per request to write its outcome, never while a request is in flight.
    """
    db = WarehouseFile.of(con)
    sends = [d for d in decisions if d.status == "send"]
    if as_of is None:
        as_of = max((d.as_of for d in decisions), default=None)
    run_as_of = utc_naive(as_of) if as_of is not None else now_utc()
    summary = DeliverySummary(run_id=run_id, dry_run=dry_run, decisions=len(sends))
    contacted = lambda it: max(utc_naive(it.as_of), run_as_of)  # noqa: E731
    work: list[tuple[_Sender, Plan]] = []
    files: dict[str, bytes | str] = {}
    with db.writing() as w:
        ensure_ops_tables(w)
        backlog = outstanding(w, [d.name for d in destinations])  # before this run sends anything
        for dest in destinations:
            ds = summary.destinations.setdefault(dest.name, DestinationSummary(destination=dest.name))
            items = [make_item(dest, d) for d in sends if dest.accepts(d)]
            state = load_state(w, dest.name, [it.decision_id for it in items])
            plan = plan_destination(dest.name, items, state, backlog)
            ds.planned, ds.retried = len(items), len(plan.retried)
            attempts = {did: row.attempts for did, row in state.items()}
            sender = _Sender(dest, db, run_id, settings, ds, progress, contacted, attempts)
            write_outcomes(w, run_id, _skip_rows(sender, plan, ds), touch_state=False)
            if progress and plan.skipped:
                progress(len(plan.skipped))
            if dry_run:
                files[f"{dest.name}.jsonl"] = _dry_run(w, sender, plan, ds, progress)
            work.append((sender, plan))
        if dry_run:
            summary.outbox_path = str(write_outbox(outbox_dir, run_id, {**files, **(extra_files or {})}))
            return summary
        _mark_intent(w, work, run_id)
    for sender, plan in work:
        for group in batches(plan.send, sender.dest.max_batch):
            sender.send(group)
    return summary


def _mark_intent(w: duckdb.DuckDBPyConnection, work: list[tuple[_Sender, Plan]], run_id: str) -> None:
    """The intent of the whole run, for every destination, before the first request to any of them: a
    kill while the first destination is being sent leaves the others' rows pending, not unknown."""
    started = now_utc()
    mark_pending(w, [it for _, plan in work for it in plan.send], run_id, started)
    for sender, plan in work:
        for decision_id in plan.replaces:
            mark_replayed(w, sender.dest.name, decision_id, before=started, at=started,
                          outcome="replaced by a corrected payload")  # fmt: skip


def _dry_run(
    con: duckdb.DuckDBPyConnection,
    sender: _Sender,
    plan: Plan,
    ds: DestinationSummary,
    progress: Progress | None,
) -> str:
    """A dry run's outbox lines for one destination (its batches as a live run would send them),
    logged as `dry_run` in ops.delivery_log."""
    groups = batches(plan.send, sender.dest.max_batch)
    write_outcomes(con, sender.run_id, [sender.outcome(it, "dry_run", final=False, sent=False) for it in plan.send],
                   touch_state=False)  # fmt: skip
    ds.dry_run = len(plan.send)
    if progress and plan.send:
        progress(len(plan.send))
    return jsonl([item_line(it, n) for n, g in enumerate(groups) for it in g])


def replay_dead_letters(
    con: duckdb.DuckDBPyConnection,
    destinations: Sequence[Destination],
    *,
    settings: DeliverySettings,
    run_id: str | None = None,
    decision_ids: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> DeliverySummary:
    """`make replay-dlq`: re-send every outstanding row (pending, failed) and every dead letter not
    replayed yet (optionally only some decisions) with their stored payloads. A dead letter whose
    decision was delivered since, replaced by a corrected payload, or superseded by a later decision
    for the same customer on that destination is closed without a send (a replay never sends a second
    action). One that gets through, or fails terminally again (a new dead letter), is closed with that
    outcome; one that fails transiently stays open (and outstanding). Ledger time is the replay time."""
    ensure_ops_tables(con)
    started = now_utc()
    run_id = run_id or f"replay-{started:%Y%m%dT%H%M%S}"
    by_name = {d.name: d for d in destinations}
    wanted = list(decision_ids) if decision_ids is not None else None
    backlog = [r for r in outstanding(con, list(by_name)) if wanted is None or r.decision_id in wanted]
    letters = pending_dead_letters(con, list(by_name), wanted)
    summary = DeliverySummary(run_id=run_id, dry_run=False, decisions=0)
    decisions: set[str] = set()
    for name, dest in by_name.items():
        dead = [OutboundItem.model_validate_json(p) for d, _, p in letters if d == name]
        plan, closed = plan_replay(con, name, [r for r in backlog if r.destination == name], dead)
        for decision_id, outcome in closed:
            mark_replayed(con, name, decision_id, before=started, at=started, outcome=outcome)
        ds = summary.destinations.setdefault(name, DestinationSummary(destination=name))
        ds.planned, ds.retried = len(dead), len(plan.retried)
        decisions.update(it.decision_id for it in plan.send)
        if not plan.send:
            continue
        state = load_state(con, name, [it.decision_id for it in plan.send])
        attempts = {did: row.attempts for did, row in state.items()}
        contacted = lambda it: max(utc_naive(it.as_of), now_utc())  # noqa: E731
        sender = _Sender(dest, WarehouseFile.of(con), run_id, settings, ds, progress, contacted, attempts)
        mark_pending(con, plan.send, run_id, now_utc())
        for group in batches(plan.send, dest.max_batch):
            sender.send(group)
        for it in dead:
            status = sender.final_status.get(it.decision_id)
            if status in ("delivered", "dead_letter"):
                mark_replayed(con, name, it.decision_id, before=started, at=now_utc(), outcome=str(status))
    summary.decisions = len(decisions)
    return summary
