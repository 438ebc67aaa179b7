"""The delivery engine: send decisions to destinations, or to the outbox on a dry run.

Per destination: build one item per `send` decision it accepts, diff against ops.sync_state (an item
whose payload hash was already DELIVERED for its record key is `unchanged`; anything that failed or
is still pending is sent again), batch up to `max_batch` (never the same record key twice in a
batch), keep under the declared rate limit, retry transient failures with exponential backoff and
jitter (429 waits honour Retry-After and do not use the retry budget), bisect a batch rejected as a
whole to isolate the bad row, handle partial results row by row, dead-letter terminal rows, and write
every attempt's outcome (see activation.state for the crash-safety argument).

Ledger time: `contacted_at` is the decision's `as_of` (the run's logical time), so the suppression
window and frequency caps of the next run compare like with like, and a backfill with an old as_of
stays consistent; a replay from the dead-letter queue records the replay time instead.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from activation.destinations.base import Destination, ItemResult, OutboundItem, make_item
from activation.errors import DestinationBlockedError, RateLimitedError, TerminalError, TransientError
from activation.outbox import item_line, jsonl, write_outbox
from activation.ratelimit import Backoff, RateBudget
from activation.settings import DeliverySettings
from activation.state import (
    Outcome,
    load_sync_state,
    mark_pending,
    mark_replayed,
    now_utc,
    pending_dead_letters,
    utc_naive,
    write_outcomes,
)
from core.contracts import Decision, DeliveryRecord, DeliveryStatus
from warehouse.ops_tables import ensure_ops_tables

log = logging.getLogger("activation.delivery")
Progress = Callable[[int], None]
_BUDGETS: weakref.WeakKeyDictionary[object, RateBudget] = weakref.WeakKeyDictionary()


class DestinationSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")
    destination: str
    planned: int = 0  # items routed to this destination
    delivered: int = 0
    unchanged: int = 0
    failed: int = 0  # retried on the next run
    dead_letter: int = 0
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
        return self.count("failed") == 0 and self.count("dead_letter") == 0


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


class _Sender:
    """Sends batches for one destination and writes what happens."""

    def __init__(
        self,
        dest: Destination,
        con: duckdb.DuckDBPyConnection,
        run_id: str,
        settings: DeliverySettings,
        summary: DestinationSummary,
        progress: Progress | None,
        contacted_at: Callable[[OutboundItem], datetime],
    ) -> None:
        self.dest, self.con, self.run_id, self.settings = dest, con, run_id, settings
        self.summary, self.progress, self.contacted_at = summary, progress, contacted_at
        self.budget = budget_for(dest, settings)
        self.backoff = Backoff(settings.backoff_base_s, settings.backoff_max_s, settings.seed)
        self.attempts: dict[str, int] = {}
        self.final_status: dict[str, str] = {}

    def scrub(self, text: str) -> str:
        for secret in self.dest.secrets:
            if secret and len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    def outcome(self, it: OutboundItem, status: DeliveryStatus, *, final: bool, error: str | None = None,
                record_id: str | None = None) -> Outcome:  # fmt: skip
        rec = DeliveryRecord(
            decision_id=it.decision_id,
            destination=it.destination,
            idempotency_key=it.idempotency_key,
            payload_hash=it.payload_hash,
            attempt=self.attempts.get(it.decision_id, 0),
            status=status,
            destination_record_id=record_id,
            error=self.scrub(error) if error else None,
            at=now_utc(),
        )
        return Outcome(
            item=it, record=rec, final=final, contacted_at=self.contacted_at(it) if final else None
        )

    def write(self, outcomes: list[Outcome]) -> None:
        write_outcomes(self.con, self.run_id, outcomes, touch_state=True)
        finals = [o for o in outcomes if o.final]
        for o in finals:
            status = o.record.status
            self.final_status[o.item.decision_id] = status
            setattr(self.summary, status, getattr(self.summary, status) + 1)
            if o.record.error and status != "delivered":
                log.warning("%s %s %s: %s", self.dest.name, o.item.decision_id, status, o.record.error)
                if o.record.error not in self.summary.errors and len(self.summary.errors) < 10:
                    self.summary.errors.append(o.record.error)
        if finals and self.progress:
            self.progress(len(finals))

    def finish(self, items: list[OutboundItem], status: DeliveryStatus, error: str) -> None:
        self.write([self.outcome(it, status, final=True, error=error) for it in items])

    def attempt_failed(self, items: list[OutboundItem], error: str) -> None:
        self.write([self.outcome(it, "failed", final=False, error=error) for it in items])

    def send(self, items: list[OutboundItem]) -> None:
        if self.summary.blocked:
            self.finish(items, "failed", f"not sent: {self.summary.blocked}")
            return
        self._group(items)

    def _sleep(self, seconds: float) -> None:
        self.summary.rate_wait_s += seconds
        time.sleep(seconds)

    def _group(self, items: list[OutboundItem]) -> None:  # noqa: C901 - one loop, every branch is a case
        s = self.settings
        pending, retries, rate_wait = list(items), 0, 0.0
        while pending:
            if self.summary.blocked:
                self.finish(pending, "failed", f"not sent: {self.summary.blocked}")
                return
            self.summary.rate_wait_s += self.budget.acquire()
            self.summary.requests += 1
            for it in pending:
                self.attempts[it.decision_id] = self.attempts.get(it.decision_id, 0) + 1
            try:
                try:
                    results = self.dest.send_batch(pending)
                finally:
                    self.budget.settle()
            except RateLimitedError as exc:
                self.summary.rate_limited += 1
                wait = exc.retry_after if exc.retry_after is not None else self.backoff.delay(1)
                rate_wait += wait
                if rate_wait > s.max_rate_limit_wait_s:
                    self.finish(pending, "failed", f"{exc.message}; gave up after waiting {rate_wait:.0f}s")
                    return
                self.attempt_failed(pending, f"{exc.message}; retry after {wait:g}s")
                self.budget.hold(wait)
                continue
            except DestinationBlockedError as exc:
                self.summary.blocked = self.scrub(exc.message)
                self.finish(pending, "failed", exc.message)
                return
            except TransientError as exc:
                retries += 1
                if retries > s.max_retries:
                    self.finish(pending, "failed", f"{exc.message} (gave up after {retries} attempts)")
                    return
                self.summary.retries += 1
                self.attempt_failed(pending, exc.message)
                self._sleep(self.backoff.delay(retries))
                continue
            except TerminalError as exc:
                if len(pending) == 1:
                    self.finish(pending, "dead_letter", exc.message)
                    return
                self.summary.bisections += 1
                self.attempt_failed(pending, f"batch of {len(pending)} rejected, bisecting: {exc.message}")
                mid = len(pending) // 2
                self._group(pending[:mid])
                self._group(pending[mid:])
                return
            except Exception as exc:  # a bug or an unexpected client error: keep the rows for the next run
                log.exception("%s: unexpected error while sending", self.dest.name)
                self.finish(pending, "failed", f"unexpected {type(exc).__name__}: {exc}")
                return
            pending, row_wait = self._rows(pending, results)
            if not pending:
                return
            if row_wait is not None:
                rate_wait += row_wait
                if rate_wait > s.max_rate_limit_wait_s:
                    self.finish(pending, "failed", f"rate limited; gave up after waiting {rate_wait:.0f}s")
                    return
                self.budget.hold(row_wait)
                continue
            retries += 1
            if retries > s.max_retries:
                self.finish(
                    pending, "failed", f"row kept failing transiently (gave up after {retries} attempts)"
                )
                return
            self.summary.retries += 1
            self._sleep(self.backoff.delay(retries))

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


def _diff(
    items: list[OutboundItem], con: duckdb.DuckDBPyConnection, dest: Destination
) -> tuple[list[OutboundItem], list[tuple[OutboundItem, DeliveryStatus, str]]]:
    state = load_sync_state(con, dest.name)
    send: list[OutboundItem] = []
    skip: list[tuple[OutboundItem, DeliveryStatus, str]] = []
    for it in items:
        row = state.get(it.record_key)
        if row and row.payload_hash == it.payload_hash and row.last_status == "delivered":
            skip.append((it, "unchanged", "payload unchanged since last successful delivery"))
        elif row and row.payload_hash == it.payload_hash and row.last_status == "dead_letter":
            skip.append((it, "dead_letter", "unchanged since it was dead-lettered: replay it or change it"))
        else:
            send.append(it)
    return send, skip


def deliver(
    decisions: Sequence[Decision],
    *,
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    dry_run: bool,
    outbox_dir: Path,
    destinations: Sequence[Destination],
    settings: DeliverySettings,
    progress: Progress | None = None,
    extra_files: Mapping[str, bytes | str] | None = None,
) -> DeliverySummary:
    """Deliver the `send` decisions (others are ignored here) to every destination that accepts them.

    Dry run: writes `outbox_dir/<run_id>/<destination>.jsonl` plus `extra_files` in one atomic rename
    and logs `dry_run`/`unchanged` rows in ops.delivery_log; destinations, sync_state, the ledger and
    the dead-letter queue are not touched. Live: sends; `extra_files` are not written.
    """
    ensure_ops_tables(con)
    sends = [d for d in decisions if d.status == "send"]
    summary = DeliverySummary(run_id=run_id, dry_run=dry_run, decisions=len(sends))
    files: dict[str, bytes | str] = {}
    for dest in destinations:
        ds = summary.destinations.setdefault(dest.name, DestinationSummary(destination=dest.name))
        sender = _Sender(dest, con, run_id, settings, ds, progress, lambda it: utc_naive(it.as_of))
        items = [make_item(dest, d) for d in sends if dest.accepts(d)]
        ds.planned = len(items)
        to_send, skipped = _diff(items, con, dest)
        for _, status, _ in skipped:
            setattr(ds, status, getattr(ds, status) + 1)
        skip_rows = [sender.outcome(it, status, final=False, error=reason) for it, status, reason in skipped]
        write_outcomes(con, run_id, skip_rows, touch_state=False)
        if progress and skipped:
            progress(len(skipped))
        groups = batches(to_send, dest.max_batch)
        if dry_run:
            lines = [item_line(it, n) for n, group in enumerate(groups) for it in group]
            files[f"{dest.name}.jsonl"] = jsonl(lines)
            rows = [sender.outcome(it, "dry_run", final=False) for it in to_send]
            write_outcomes(con, run_id, rows, touch_state=False)
            ds.dry_run = len(to_send)
            if progress and to_send:
                progress(len(to_send))
            continue
        mark_pending(con, to_send, now_utc())
        for group in groups:
            sender.send(group)
    if dry_run:
        summary.outbox_path = str(write_outbox(outbox_dir, run_id, {**files, **(extra_files or {})}))
    return summary


def replay_dead_letters(
    con: duckdb.DuckDBPyConnection,
    destinations: Sequence[Destination],
    *,
    settings: DeliverySettings,
    run_id: str | None = None,
    decision_ids: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> DeliverySummary:
    """Re-send dead letters not replayed yet (optionally only some decisions) with their stored
    payloads. A row that gets through, or fails terminally again (a new dead letter is written), is
    marked `replayed_at`; one that fails transiently stays in the queue. Ledger time is the replay time."""
    ensure_ops_tables(con)
    started = now_utc()
    run_id = run_id or f"replay-{started:%Y%m%dT%H%M%S}"
    by_name = {d.name: d for d in destinations}
    rows = pending_dead_letters(con, list(by_name), list(decision_ids) if decision_ids is not None else None)
    summary = DeliverySummary(run_id=run_id, dry_run=False, decisions=len({r[1] for r in rows}))
    for name, dest in by_name.items():
        items = [OutboundItem.model_validate_json(p) for d, _, p in rows if d == name]
        ds = summary.destinations.setdefault(name, DestinationSummary(destination=name, planned=len(items)))
        if not items:
            continue
        sender = _Sender(dest, con, run_id, settings, ds, progress, lambda it: now_utc())
        mark_pending(con, items, now_utc())
        for group in batches(items, dest.max_batch):
            sender.send(group)
        for it in items:
            if sender.final_status.get(it.decision_id) in ("delivered", "dead_letter"):
                mark_replayed(con, name, it.decision_id, before=started, at=now_utc())
    return summary
