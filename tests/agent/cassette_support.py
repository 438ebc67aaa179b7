"""vcrpy set-up for the LLM path.

Replay (the default): recording off, the request body part of the match, a dummy key, no HTTP
retries, and the base URL pointing at a closed port on 127.0.0.1, so a missing or stale cassette
fails at once and names itself instead of reaching any network.
Record (`make record-cassettes`, NBA_RECORD=1): the same tests run against a real model server, the
embedded SmolLM2 on llama-server unless OPENAI_BASE_URL is set, and rewrite the cassettes. The client
speaks as it does to the embedded server (instructor's JSON_SCHEMA mode); recording against another
server takes NBA_LLM__INSTRUCTOR_MODE from the environment (TOOLS for OpenAI itself). Authorization and other
credential headers are filtered from every cassette.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import vcr

from agent.pipeline import Decided, decide
from agent.policies import LLMEndpoint
from core.config import EMBEDDED_MODEL, LLMSettings, RunConfig, load_settings, settings_from
from core.contracts import CustomerContext

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"
RECORD = os.environ.get("NBA_RECORD") == "1"
CLOSED_PORT_URL = "http://127.0.0.1:9/v1"  # discard port: nothing listens, nothing leaves the machine
SECRET_HEADERS = [
    "authorization",
    "api-key",
    "x-api-key",
    "openai-organization",
    "openai-project",
    "cookie",
    "set-cookie",
]


_RECORDED: set[str] = set()  # cassettes rewritten in this recording session


class _OncePerSession(vcr.VCR):
    """Records a cassette the first time a test uses it in a recording session and replays it for the
    tests after: several tests share one cassette, and a small model's answers vary between runs
    (llama-server's batches), so each recording its own would leave the last one's traffic for all."""

    def use_cassette(self, path: Any = None, **kwargs: Any) -> Any:
        if RECORD and "record_mode" not in kwargs:
            kwargs["record_mode"] = "none" if path in _RECORDED else "all"
            _RECORDED.add(path)
        return super().use_cassette(path, **kwargs)


def llm_vcr() -> vcr.VCR:
    return _OncePerSession(
        cassette_library_dir=str(CASSETTES),
        record_mode="all" if RECORD else "none",
        match_on=["method", "path", "body"],
        filter_headers=SECRET_HEADERS,
        decode_compressed_response=True,
    )


def cassette_mode() -> str:
    """The instructor mode the cassettes speak: the embedded llama-server's, or the recording server's."""
    if RECORD and os.environ.get("OPENAI_BASE_URL"):
        return os.environ.get("NBA_LLM__INSTRUCTOR_MODE", "tools")
    return "json_schema"


def llm_test_settings(**overrides: object) -> LLMSettings:
    """A test client: dummy key, no HTTP retries, no cache (so every case really goes to the cassette)."""
    values: dict[str, object] = {
        "instructor_mode": cassette_mode(),
        "model": os.environ.get("OPENAI_MODEL", EMBEDDED_MODEL) if RECORD else EMBEDDED_MODEL,
        "api_key": os.environ.get("OPENAI_API_KEY", "sk-test-dummy") if RECORD else "sk-test-dummy",
        "http_retries": 0,
        "cache": False,
        "timeout_s": 600.0 if RECORD else 30.0,
    }
    values.update(overrides)
    return LLMSettings.model_validate(values)


def decide_llm(
    contexts: list[CustomerContext],
    url: str,
    *,
    llm: LLMSettings | None = None,
    cache: object = None,
    run_id: str = "cassette",
    **run: object,
) -> tuple[list[Decided], dict[str, int]]:
    """The one pipeline in LLM mode against `url` (holdouts off), with a test client's settings."""
    from agent_cases import AS_OF

    llm = llm or llm_test_settings()
    run.setdefault("prompt_version", "v1")  # the cassettes' prompt (v3 needs a warehouse's learned ranking)
    config = settings_from(RunConfig, mode="llm", global_holdout_pct=0, segment_holdout_pct=0, llm=llm, **run)
    return decide(
        contexts,
        {},
        config,
        run_id=run_id,
        as_of=AS_OF,
        endpoint=LLMEndpoint(llm, url=url),
        cache=cache,  # type: ignore[arg-type]
    )


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

    with local_llm.serve(load_settings(RunConfig).llm) as url:
        yield url


def require_cassette(name: str) -> Path:
    """Replay: the cassette must exist. Record: start it afresh the first time this session uses it
    (vcrpy's "all" mode would keep the old interactions in the file next to the new ones)."""
    path = CASSETTES / name
    if RECORD and not name.startswith("http_") and name not in _RECORDED:
        path.unlink(missing_ok=True)
    if not RECORD and not path.exists():
        raise AssertionError(f"cassette tests/cassettes/{name} is missing: run `make record-cassettes`")
    return path


HAND_WRITTEN_NOTE = (
    "# HAND-WRITTEN HTTP FIXTURE (not a recording). No real model server answers {code} on demand, so this\n"
    "# file was generated by tests/agent/cassette_support.py:write_error_fixture from the recorded request\n"
    "# in tests/cassettes/{source}: the request is the real one, the {code} response is written by hand\n"
    "# with the body and headers an OpenAI-compatible server sends for it.\n"
)

ERROR_RESPONSES = {
    429: (
        "Too Many Requests",
        {"retry-after": ["20"], "x-ratelimit-remaining-requests": ["0"]},
        {
            "error": {
                "message": "Rate limit reached for requests",
                "type": "requests",
                "code": "rate_limit_exceeded",
            }
        },
    ),
    500: (
        "Internal Server Error",
        {},
        {
            "error": {
                "message": "The server had an error while processing your request.",
                "type": "server_error",
            }
        },
    ),
}


def write_error_fixture(source: str, code: int) -> str:
    """Write tests/cassettes/http_<code>.yaml: the first recorded request of `source`, answered with `code`."""
    import json

    import yaml

    data = yaml.safe_load((CASSETTES / source).read_text())
    first = data["interactions"][0]
    message, headers, body = ERROR_RESPONSES[code]
    first["response"] = {
        "status": {"code": code, "message": message},
        "headers": {"content-type": ["application/json"], **headers},
        "body": {"string": json.dumps(body)},
    }
    name = f"http_{code}.yaml"
    text = HAND_WRITTEN_NOTE.format(code=code, source=source) + yaml.safe_dump(
        {"interactions": [first], "version": data.get("version", 1)}, sort_keys=False, allow_unicode=True
    )
    (CASSETTES / name).write_text(text)
    return name
