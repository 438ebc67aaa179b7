"""Errors of the agent package. The CLI turns each into one line and a non-zero exit."""

from __future__ import annotations

from core.errors import NBAError, UserError


class AgentError(NBAError):
    """Base class: a message a user can act on."""


class WarehouseNotReady(AgentError):
    pass


class UnknownCustomerError(AgentError, UserError):
    """A customer id that is in no segment (or does not exist)."""


class PromptError(AgentError):
    """A prompt template is missing or references an undefined variable."""


class LocalModelError(AgentError):
    """The embedded model server could not be installed or started."""
