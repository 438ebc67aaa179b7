"""Decision cache: an unchanged re-run makes zero LLM calls.

Keyed by (model, prompt version, rendered prompt, context hash, settings that change the output).
Only successful proposals are stored: a failure is retried on the next run. SQLite in WAL mode, so
concurrent readers and a killed run never corrupt it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

from agent.contracts import LLMAttempt, Proposal, stable_hash
from warehouse.paths import REPO_ROOT


def cache_path() -> Path:
    return Path(os.environ.get("NBA_CACHE_DIR") or REPO_ROOT / ".cache") / "llm_decisions.sqlite"


def cache_key(
    *,
    model: str,
    prompt_version: str,
    messages: list[dict[str, str]],
    context_hash: str,
    fingerprint: dict[str, object],
) -> str:
    return stable_hash(
        {
            "model": model,
            "prompt_version": prompt_version,
            "messages": messages,
            "context": context_hash,
            "settings": fingerprint,
        },
        length=32,
    )


class DecisionCache:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._con = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._con.execute("pragma journal_mode=wal")
        self._con.execute(
            "create table if not exists proposals (key text primary key, proposal text not null, "
            "attempts text not null, created_at text default current_timestamp)"
        )
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> tuple[dict, list[LLMAttempt]] | None:
        with self._lock:
            row = self._con.execute(
                "select proposal, attempts from proposals where key = ?", (key,)
            ).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return json.loads(row[0]), [LLMAttempt.model_validate(a) for a in json.loads(row[1])]

    def contains(self, key: str) -> bool:
        with self._lock:
            return self._con.execute("select 1 from proposals where key = ?", (key,)).fetchone() is not None

    def put(self, key: str, proposal: Proposal, attempts: list[LLMAttempt]) -> None:
        payload = json.dumps(proposal.model_dump(mode="json"), sort_keys=True)
        trail = json.dumps([a.model_dump(mode="json") for a in attempts])
        with self._lock:
            self._con.execute(
                "insert or replace into proposals (key, proposal, attempts) values (?, ?, ?)",
                (key, payload, trail),
            )

    def close(self) -> None:
        self._con.close()
