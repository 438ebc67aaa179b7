"""The project's error base classes. Every package's errors derive from these, so a command-line
entry point catches one type and prints one line; `exit_code` says how the process ends:
2 for a mistake in what the user asked (a bad value, a missing setting), 1 for a failed run."""

from __future__ import annotations


def inline(value: object) -> str:
    """A value the user gave, as it goes inside a one-line message: its line breaks written as \\n
    (a CLI prints each line of an error as a line of its own)."""
    return str(value).replace("\r", "\\r").replace("\n", "\\n")


class NBAError(Exception):
    """Base class of every error this project raises on purpose: a message a person can act on."""

    exit_code = 1


class UserError(NBAError, ValueError):
    """The input is wrong: a flag, a variable, an identifier. The message names it and the fix."""

    exit_code = 2


class ConfigError(UserError):
    """A run setting is missing or invalid. `names` are every way to set it (flag, make variable,
    environment variable), so the one line the user reads says where to fix it."""

    def __init__(self, names: str, problem: str, value: object = None) -> None:
        self.names, self.problem, self.value = names, problem, value
        shown = "" if value is None else f" (got {value!r})"
        super().__init__(f"{names}: {problem}{shown}")


class ReferenceConfigError(NBAError):
    """The reference data (action bank, templates, channel limits) is inconsistent."""


class TemplateRenderError(ReferenceConfigError):
    def __init__(self, template_id: str, detail: str) -> None:
        self.template_id, self.detail = template_id, detail
        super().__init__(f"template {template_id!r} does not render: {detail}")
