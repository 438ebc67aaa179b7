"""Decision cache: an unchanged re-run makes zero LLM calls.

Keyed by the request alone (model, prompt version, rendered prompt, the answer's schema, settings that
change the output), never by who the customer is: prompts carry no identity (agent/facts.py), so the
customers whose prompts are identical share one answer.
Stored: successful proposals, and deterministic failures (invalid or truncated output: the same model,
prompt, seed and settings give the same answer again, so asking again only burns tokens). Transient
failures (timeouts, HTTP errors) are never stored: they are retried on the next run. SQLite in WAL
mode, so concurrent readers and a killed run never corrupt it.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from core.contracts import LLMAttempt, Proposal, stable_hash
from warehouse import paths
from warehouse.ownership import owned_dir


def cache_path() -> Path:
    return paths.cache_dir() / "llm_decisions.sqlite"


def cache_key(
    *,
    model: str,
    prompt_version: str,
    messages: list[dict[str, str]],
    fingerprint: dict[str, object],
    answer_schema: dict[str, object] | None = None,
) -> str:
    return stable_hash(
        {
            "model": model,
            "prompt_version": prompt_version,
            "messages": messages,
            "settings": fingerprint,
            # what the answer had to be (the grammar on llama-server): a narrower schema for the same
            # prompt is a different question
            **({"answer_schema": answer_schema} if answer_schema is not None else {}),
        },
        length=32,
    )


class DecisionCache:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or owned_dir("cache") / cache_path().name  # refused if the folder is not ours
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._con = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._con.execute("pragma journal_mode=wal")
        self._con.execute(
            "create table if not exists proposals_v2 (key text primary key, proposal text, failure_reason text, "
            "attempts text not null, created_at text default current_timestamp)"
        )
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> tuple[dict | None, str | None, list[LLMAttempt]] | None:
        """(proposal or None, failure reason or None, attempts) of a stored answer, or None."""
        with self._lock:
            row = self._con.execute(
                "select proposal, failure_reason, attempts from proposals_v2 where key = ?", (key,)
            ).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        proposal = json.loads(row[0]) if row[0] is not None else None
        return proposal, row[1], [LLMAttempt.model_validate(a) for a in json.loads(row[2])]

    def contains(self, key: str) -> bool:
        with self._lock:
            return (
                self._con.execute("select 1 from proposals_v2 where key = ?", (key,)).fetchone() is not None
            )

    def put(
        self,
        key: str,
        proposal: Proposal | None,
        attempts: list[LLMAttempt],
        failure_reason: str | None = None,
    ) -> None:
        payload = (
            json.dumps(proposal.model_dump(mode="json"), sort_keys=True) if proposal is not None else None
        )
        trail = json.dumps([a.model_dump(mode="json") for a in attempts])
        with self._lock:
            self._con.execute(
                "insert or replace into proposals_v2 (key, proposal, failure_reason, attempts) values (?, ?, ?, ?)",
                (key, payload, failure_reason, trail),
            )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Every put inside is committed together or not at all (a put alone commits itself)."""
        self._con.execute("begin immediate")
        try:
            yield
        except BaseException:
            self._con.execute("rollback")
            raise
        self._con.execute("commit")

    def close(self) -> None:
        self._con.close()
