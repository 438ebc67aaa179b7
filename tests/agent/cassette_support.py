"""vcrpy set-up for the LLM path.

Replay (the default): recording off, the request body part of the match, a dummy key, no HTTP
retries, and the base URL pointing at a closed port on 127.0.0.1, so a missing or stale cassette
fails at once and names itself instead of reaching any network.
Record (`make record-cassettes`, NBA_RECORD=1): the same tests run against a real model server, the
embedded SmolLM2 unless OPENAI_BASE_URL is set, and rewrite the cassettes. Authorization and other
credential headers are filtered from every cassette.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import vcr

from agent.settings import EMBEDDED_MODEL, LLMSettings

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"
RECORD = os.environ.get("NBA_RECORD") == "1"
CLOSED_PORT_URL = "http://127.0.0.1:9/v1"  # discard port: nothing listens, nothing leaves the machine
SECRET_HEADERS = ["authorization", "api-key", "x-api-key", "openai-organization", "openai-project", "cookie",
                  "set-cookie"]


def llm_vcr() -> vcr.VCR:
    return vcr.VCR(
        cassette_library_dir=str(CASSETTES),
        record_mode="all" if RECORD else "none",
        match_on=["method", "path", "body"],
        filter_headers=SECRET_HEADERS,
        decode_compressed_response=True,
    )


def llm_test_settings(**overrides: object) -> LLMSettings:
    """A test client: dummy key, no HTTP retries, no cache (so every case really goes to the cassette)."""
    values: dict[str, object] = {
        "model": os.environ.get("OPENAI_MODEL", EMBEDDED_MODEL) if RECORD else EMBEDDED_MODEL,
        "api_key": os.environ.get("OPENAI_API_KEY", "sk-test-dummy") if RECORD else "sk-test-dummy",
        "http_retries": 0,
        "cache": False,
        "timeout_s": 120.0 if RECORD else 30.0,
    }
    values.update(overrides)
    return LLMSettings.model_validate(values)


@contextmanager
def model_server() -> Iterator[str]:
    """Record: a real server (OPENAI_BASE_URL or the embedded model). Replay: a closed local port."""
    if not RECORD:
        yield CLOSED_PORT_URL
        return
    if os.environ.get("OPENAI_BASE_URL"):
        yield os.environ["OPENAI_BASE_URL"]
        return
    from agent import local_llm

    with local_llm.serve() as url:
        yield url


def require_cassette(name: str) -> Path:
    path = CASSETTES / name
    if not RECORD and not path.exists():
        raise AssertionError(f"cassette tests/cassettes/{name} is missing: run `make record-cassettes`")
    return path
