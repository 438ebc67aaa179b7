"""Fixtures of the run-level tests: the three local destination servers on 127.0.0.1, with the NBA_*
variables that point the connectors at them set for the test (and for subprocesses it starts)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from run_helpers import Servers, server_env

from testing.local_servers import HubSpotServer, SalesforceServer, WebhookServer


@pytest.fixture
def start_servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Servers]]:
    """start_servers(hubspot={...knobs}, salesforce={...}, webhook={...}) -> Servers, env set."""
    with ExitStack() as stack:

        def start(**knobs: dict) -> Servers:
            s = Servers(
                hubspot=stack.enter_context(HubSpotServer(seed=11, **knobs.get("hubspot", {}))),
                salesforce=stack.enter_context(SalesforceServer(seed=12, **knobs.get("salesforce", {}))),
                webhook=stack.enter_context(WebhookServer(seed=13, **knobs.get("webhook", {}))),
            )
            for key, value in server_env(s).items():
                monkeypatch.setenv(key, value)
            return s

        yield start


@pytest.fixture
def servers(start_servers: Callable[..., Servers]) -> Servers:
    return start_servers()
