"""The LLM client's workarounds for its own CPU cost, in one place, each saying what it saves.

`bench/bench_llm_overhead.py` (decisions against a zero-latency server) measures the client with
them (its figures: bench/README.md); each is a function of its own so it can be switched off and
measured again. None changes what is sent or what is parsed:
tests/agent/test_llm_transport.py compares the bodies a real local server received.

1. `http_client`: openai's own aiohttp transport instead of httpx, whose connection pool checks
   every connection on every request through anyio.
2. `post_as_built`: `POST /chat/completions` with the body exactly as instructor built it, skipping
   the SDK's request transform (the identity for our plain JSON bodies, yet a large share of the CPU).
3. `check_response_models_once`: instructor re-walks the response model for async validators several
   times per call; our per-segment models are checked once, when built.
4. `core.gc_passes.fewer_gc_passes` around each batch of calls (fewer collector passes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx2
import openai
from openai.types.chat import ChatCompletion
from pydantic import BaseModel

from core.config import LLMSettings
from core.gc_passes import GC_GEN0_THRESHOLD, fewer_gc_passes

__all__ = [
    "GC_GEN0_THRESHOLD",
    "check_response_models_once",
    "fewer_gc_passes",
    "http_client",
    "post_as_built",
]


def http_client(settings: LLMSettings) -> httpx2.AsyncClient:
    """openai's own HTTP client on the chosen transport, with a pool as wide as the concurrency
    (`NBA_LLM__HTTP_TRANSPORT=httpx` switches back to the SDK's default)."""
    width = max(settings.concurrency, 1)
    limits = httpx2.Limits(max_connections=width, max_keepalive_connections=width)
    if settings.http_transport == "aiohttp":
        return openai.DefaultAioHttpClient(timeout=settings.timeout_s, limits=limits)
    return openai.DefaultAsyncHttpxClient(timeout=settings.timeout_s, limits=limits)


def post_as_built(raw: openai.AsyncOpenAI) -> Callable[..., Awaitable[ChatCompletion]]:
    """`POST /chat/completions` through the openai client (its auth, timeout, retries, error types and
    response model) with the body sent exactly as instructor built it."""

    async def create(**body: Any) -> ChatCompletion:
        return await raw.post(
            "/chat/completions",
            body=body,
            cast_to=ChatCompletion,
            options={"security": {"bearer_auth": True}},
        )

    return create


_CHECKED: set[type[BaseModel]] = set()  # response models checked once by instructor when built


def _install_check_once() -> Callable[[Any], None]:
    """Install `_reject_async_validators_once` where instructor looks the check up (the module
    attribute, read at each call, and patch.py's import); return instructor's own check."""
    from instructor.v2.core import patch as patch_module
    from instructor.v2.validation import async_validators

    current = async_validators.reject_async_validators
    original: Callable[[Any], None] = getattr(current, "__wrapped__", current)
    async_validators.reject_async_validators = _reject_async_validators_once
    patch_module.reject_async_validators = _reject_async_validators_once  # type: ignore[attr-defined]
    return original


def _reject_async_validators_once(response_model: Any) -> None:
    if response_model not in _CHECKED:
        _instructor_check(response_model)


_instructor_check = _install_check_once()
_reject_async_validators_once.__wrapped__ = _instructor_check  # type: ignore[attr-defined]


def check_response_models_once(model: type[BaseModel]) -> type[BaseModel]:
    """Check a response model with instructor's own function now, and never again per call."""
    _instructor_check(model)
    _CHECKED.add(model)
    return model
