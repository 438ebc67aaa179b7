"""Errors of the agent package. The CLI turns each into one line and a non-zero exit."""

from __future__ import annotations


class AgentError(Exception):
    """Base class: a message a user can act on."""


class WarehouseNotReady(AgentError):
    pass


class SettingsError(AgentError):
    """A setting is missing or invalid; the message names the variable to set."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        super().__init__(f"{variable}: {problem}")


class PromptError(AgentError):
    """A prompt template is missing or references an undefined variable."""


class LocalModelError(AgentError):
    """The embedded model server could not be installed or started."""
