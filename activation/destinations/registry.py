"""The destination registry: each destination's folder describes itself once (`DestinationType`),
and `activation/destinations/__init__.py` registers it with one line; the settings, the run and
`apply` ask the registry, never a name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr, ValidationError

from activation.destinations.base import Destination
from core.config import Section
from core.errors import ConfigError


class SettingProblem(ValueError):
    """Raised by a settings section's own validator about one of its fields (a check across fields,
    such as the ones a way of signing in needs), so the error names that field's variable."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field, self.problem = field, problem


@dataclass(frozen=True)
class DestinationType:
    """What the house knows of a destination: its name (in NBA_DESTINATIONS and its NBA_<NAME>__*
    section), its settings section, how to open its connector with them, and the placeholders a dry
    run fills in for the credentials it never uses (payloads never hold them)."""

    name: str
    settings: type[Section]
    connect: Callable[..., Destination]  # (settings, *, timeout_s) -> the connector
    dry_run: Mapping[str, str] = field(default_factory=dict)

    def settings_from(self, given: Mapping[str, Any], *, dry_run: bool) -> Section:
        """Its validated settings from the raw section; an error names the variable to set."""
        values = (dict(self.dry_run) if dry_run else {}) | dict(given)
        try:
            return self.settings.model_validate(values)
        except ValidationError as exc:
            err = exc.errors()[0]
            own = (err.get("ctx") or {}).get("error")
            if isinstance(own, SettingProblem):
                raise ConfigError(self.variable(own.field), own.problem) from None
            var = self.variable(".".join(str(p) for p in err.get("loc", ())))
            kind = err.get("type")
            problem = (
                "is required" if kind == "missing" else str(err.get("msg")).removeprefix("Value error, ")
            )
            if kind == "extra_forbidden":
                valid = ", ".join(self.variable(f) for f in self.settings.model_fields)
                problem = f"is not a setting; valid: {valid}"
            spec = self.settings.model_fields.get(str((err.get("loc") or ("",))[0]))
            # the value given, beside pydantic's own wording ("Input should be greater than 0"); never
            # a secret's
            shown = (
                kind not in ("missing", "extra_forbidden")
                and spec is not None
                and spec.annotation is not SecretStr
            )
            raise ConfigError(var, problem, err.get("input") if shown else None) from None

    def variable(self, field_name: str) -> str:
        """The environment variable of one of its settings: NBA_<NAME>__<FIELD>."""
        return f"NBA_{self.name.upper()}__{field_name.upper()}"


_registered: dict[str, DestinationType] = {}


def register(kind: DestinationType) -> DestinationType:
    """Add a destination (its name must be new); the order of registration is a dry run's order."""
    if kind.name in _registered:
        raise ValueError(f"a destination named {kind.name!r} is already registered")
    _registered[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    _registered.pop(name, None)


def names() -> tuple[str, ...]:
    """Every registered destination, in registration order."""
    return tuple(_registered)


def get(name: str) -> DestinationType:
    return _registered[name]
