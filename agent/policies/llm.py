"""The LLM policy: render the versioned prompt for each eligible customer, ask the model through
the one LLM client (agent/llm.py), and return its proposals. What is allowed is decided later, by
the guardrails; a failure here is an outcome with a reason, never an exception."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Protocol

import numpy as np

from agent.cache import DecisionCache
from agent.llm import LLMClient
from agent.policies.registry import BuildInputs, learns_from_the_log
from agent.prompts import RenderedPrompt, render_prompt
from core.config import LLMSettings
from core.contracts import Channel, CustomerContext, GuardrailSettings, PolicyOutcome
from core.policy import PolicyItem, Progress
from core.policy_kinds import LEARNED, LLM
from core.reference import ReferenceData


class Ranker(Protocol):
    """What the LLM drafts on top of: the learned policy's values for a batch (agent/policies/learned.py)."""

    model: str | None

    @property
    def catalog(self) -> Any: ...

    def ranking(self, batch: Sequence[PolicyItem]) -> tuple[np.ndarray, np.ndarray]: ...

    def greedy_order(
        self, batch: Sequence[PolicyItem], values: np.ndarray, allowed: np.ndarray
    ) -> np.ndarray: ...


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

            self._url = self._stack.enter_context(local_llm.serve(self.settings))
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
    name: str = LLM.name

    def __init__(
        self,
        settings: LLMSettings,
        *,
        guard: GuardrailSettings,
        prompt_version: str,
        ref: ReferenceData,
        endpoint: LLMEndpoint,
        cache: DecisionCache | None,
        ranker: Ranker | None = None,
    ) -> None:
        self.settings, self.guard, self.ref = settings, guard, ref
        self.model: str | None = settings.model
        self.prompt_version: str | None = prompt_version
        self.endpoint, self.cache = endpoint, cache
        self.ranker = ranker
        self.top_k, self.within = settings.ranking_top_k, settings.ranking_within
        self.calls = 0
        self.identity = f"llm:{prompt_version}@{settings.model}"  # the promotion gate's key
        if ranker is not None and ranker.model:
            self.model = f"{settings.model}+{ranker.model}"  # the draft and the ranking it was written on
            self.identity += f"+{getattr(ranker, 'identity', ranker.model)}"  # the ranker's recipe

    def prompt(
        self,
        ctx: CustomerContext,
        allowed_channels: Sequence[Channel],
        ranking: Sequence[dict[str, Any]] = (),
    ) -> RenderedPrompt:
        return render_prompt(
            ctx,
            version=self.prompt_version or "v3",
            ref=self.ref,
            allowed_channels=allowed_channels,
            goal=self.guard.goal,
            discount_cap=self.guard.discount_cap,
            ranking=ranking,
            detail=self.settings.prompt_detail,
        )

    def rankings(self, batch: Sequence[PolicyItem]) -> list[list[dict[str, Any]]]:
        """Per customer, the top allowed actions, in the order the learned policy would choose them
        (its greedy action first), each with the model's estimated value: after the first, only actions
        valued within `ranking_within` of it, at most `ranking_top_k` in all."""
        if self.ranker is None:
            return [[] for _ in batch]
        values, allowed = self.ranker.ranking(batch)
        by = np.nan_to_num(self.ranker.greedy_order(batch, values, allowed), nan=-np.inf)
        cat = self.ranker.catalog
        out = []
        for i in range(len(batch)):
            order = [int(a) for a in np.argsort(-by[i], kind="stable") if allowed[i, a]]
            if order:
                first = float(values[i, order[0]])
                floor = first - abs(first) * self.within
                order = order[:1] + [a for a in order[1:] if float(values[i, a]) >= floor]
            out.append(
                [
                    {
                        "template_id": cat.template_ids[a],
                        "channel": cat.channels[a],
                        "discount_pct": float(cat.discounts[a]),
                        "value": f"{float(values[i, a]):.3g}",
                    }
                    for a in order[: self.top_k]
                ]
            )
        return out

    def requests(self, batch: Sequence[PolicyItem]) -> list[tuple[CustomerContext, RenderedPrompt]]:
        """What this policy asks the model for a batch: each customer's prompt, on their reachable
        channels and (for a version written on the learned ranking) their ranking."""
        ranks = self.rankings(batch)
        return [
            (ctx, self.prompt(ctx, elig.allowed_channels, r))
            for (ctx, elig), r in zip(batch, ranks, strict=True)
        ]

    async def propose(
        self, batch: Sequence[PolicyItem], progress: Progress | None = None
    ) -> list[PolicyOutcome]:
        todo = self.requests(batch)
        client = LLMClient(
            self.settings,
            endpoint=self.endpoint.url,
            cache=self.cache if self.settings.cache else None,
            ref=self.ref,
        )
        try:
            # customers whose prompts share a prefix go one after another, so the server's prompt
            # cache reuses it (outcomes are matched back by customer)
            todo.sort(key=lambda item: item[1].system)
            return await client.propose_many(todo, on_done=(lambda _o: progress(1)) if progress else None)
        finally:
            self.calls += client.calls
            await client.aclose()

    def stats(self) -> dict[str, int]:
        return {"llm_calls": self.calls, "cache_hits": self.cache.hits if self.cache else 0}


def build(inputs: BuildInputs) -> LLMPolicy:
    """Asks `inputs.endpoint` (one per command, so policies share a server) and uses the decision
    cache (NBA_LLM__CACHE); a prompt written on the learned ranking gets the learned policy as ranker."""
    config, llm = inputs.config, inputs.config.llm
    ranked = learns_from_the_log(LLM.name, config.prompt_version)
    return LLMPolicy(
        llm,
        guard=inputs.guard,
        prompt_version=config.prompt_version,
        ref=inputs.ref,
        endpoint=inputs.endpoint or LLMEndpoint(llm),
        cache=inputs.cache if inputs.cache is not None else (DecisionCache() if llm.cache else None),
        ranker=inputs.build(LEARNED.name) if ranked else None,  # type: ignore[arg-type]
    )
