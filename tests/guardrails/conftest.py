"""Fixtures for the guardrail tests. The factories live in guardrail_factories.py (importable by
test modules under a name no other conftest shares); `make_ctx(**overrides)` is re-exported here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from guardrail_factories import AS_OF, make_ctx, make_meta, make_proposal

from core.contracts import CustomerContext, GuardrailSettings
from core.reference import ReferenceData, load_reference
from warehouse.names import FIRST_NAMES

__all__ = ["AS_OF", "make_ctx", "make_meta", "make_proposal"]


@pytest.fixture(scope="session")
def ref() -> ReferenceData:
    """The seeds, knowing the synthetic customers' first names (as a warehouse built from them would)."""
    return load_reference().with_customer_names(FIRST_NAMES)


@pytest.fixture
def settings() -> GuardrailSettings:
    """Holdout off, so a test exercises the check it names rather than the arm."""
    return GuardrailSettings(global_holdout_pct=0, segment_holdout_pct=0)


@pytest.fixture(scope="session")
def ctx_factory() -> Callable[..., CustomerContext]:
    return make_ctx


@pytest.fixture(scope="session")
def as_of() -> Any:
    return AS_OF
