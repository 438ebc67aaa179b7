"""The LLM policy: render the versioned prompt for each eligible customer, ask the model through
the one LLM client (agent/llm.py), and return its proposals. What is allowed is decided later, by
the guardrails; a failure here is an outcome with a reason, never an exception."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from types import TracebackType

from agent.cache import DecisionCache
from agent.llm import LLMClient
from agent.prompts import RenderedPrompt, render_prompt
from core.config import LLMSettings
from core.contracts import Channel, CustomerContext, GuardrailSettings, PolicyMode, PolicyOutcome
from core.policy import PolicyItem, Progress
from core.reference import ReferenceData


class LLMEndpoint:
    """Where the model is: the configured endpoint, or the embedded model, served on first use and
    stopped at `close()`, so every LLM policy of one command shares one server and a fully cached
    run starts none."""

    def __init__(self, settings: LLMSettings, *, url: str | None = None) -> None:
        self.settings = settings
        self._stack = contextlib.ExitStack()
        self._url: str | None = url  # a server someone else runs (tests, benchmarks)

    def url(self) -> str | None:
        if self._url is not None or not self.settings.embedded:
            return self._url or self.settings.base_url
        if self._url is None:
            from agent import local_llm

            self._url = self._stack.enter_context(local_llm.serve())
        return self._url

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> LLMEndpoint:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class LLMPolicy:
    name: PolicyMode = "llm"

    def __init__(
        self,
        settings: LLMSettings,
        *,
        guard: GuardrailSettings,
        prompt_version: str,
        ref: ReferenceData,
        endpoint: LLMEndpoint,
        cache: DecisionCache | None,
    ) -> None:
        if settings.embedded:
            # llama-cpp-python's server answers one request at a time: queueing more only reorders them.
            settings = settings.model_copy(update={"concurrency": 1})
        self.settings, self.guard, self.ref = settings, guard, ref
        self.model: str | None = settings.model
        self.prompt_version: str | None = prompt_version
        self.endpoint, self.cache = endpoint, cache
        self.calls = 0

    def prompt(self, ctx: CustomerContext, allowed_channels: Sequence[Channel]) -> RenderedPrompt:
        return render_prompt(
            ctx,
            version=self.prompt_version or "v1",
            ref=self.ref,
            allowed_channels=allowed_channels,
            goal=self.guard.goal,
            discount_cap=self.guard.discount_cap,
        )

    async def propose(
        self, batch: Sequence[PolicyItem], progress: Progress | None = None
    ) -> list[PolicyOutcome]:
        todo = [(ctx, self.prompt(ctx, elig.allowed_channels)) for ctx, elig in batch]
        client = LLMClient(
            self.settings,
            endpoint=self.endpoint.url,
            cache=self.cache if self.settings.cache else None,
            ref=self.ref,
        )
        try:
            return await client.propose_many(todo, on_done=(lambda _o: progress(1)) if progress else None)
        finally:
            self.calls += client.calls
            await client.aclose()

    def stats(self) -> dict[str, int]:
        return {"llm_calls": self.calls, "cache_hits": self.cache.hits if self.cache else 0}
