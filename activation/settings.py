"""The activate command's settings: the shared run settings (core.config.RunConfig) plus how and
where to deliver, built once from flags and `NBA_*` variables (pydantic-settings).

Sections: `NBA_DELIVERY__*` (retries, backoff, waits, timeouts, circuit breaker),
`NBA_<DESTINATION>__*` (credentials and limits of each registered destination, e.g.
`NBA_HUBSPOT__TOKEN`; each destination's folder owns its section), `NBA_DESTINATIONS=hubspot,webhook`
(which a live run sends to),
`NBA_PLAN__*` (how long a plan may wait for `apply`) and `NBA_ALERTS__*` (where a failed or partial
live run is reported).
Secrets are `SecretStr`, so a repr or a log line shows `**********`.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource

from activation.destinations import registry
from core.config import HttpURL, RunConfig, Section
from core.errors import ConfigError


class DeliverySettings(Section):
    """How the engine sends: retries, backoff, waits, timeouts (section NBA_DELIVERY__)."""

    max_retries: int = Field(default=4, ge=0, le=20)  # transient failures per batch; 429 waits not counted
    backoff_base_s: float = Field(default=0.5, ge=0, le=60, allow_inf_nan=False)
    backoff_max_s: float = Field(default=30.0, ge=0, le=600, allow_inf_nan=False)
    max_rate_limit_wait_s: float = Field(default=300.0, ge=0, le=86400, allow_inf_nan=False)
    request_timeout_s: float = Field(default=30.0, gt=0, le=600, allow_inf_nan=False)
    rate_safety_s: float = Field(default=0.05, ge=0, le=10, allow_inf_nan=False)
    seed: int | None = None  # jitter seed (tests); None -> system randomness
    max_deviation_pct: float = Field(default=50.0, ge=0, allow_inf_nan=False)  # circuit breaker
    min_history: int = Field(default=3, ge=1)


class PlanSettings(Section):
    """`apply` of a plan (section NBA_PLAN__). A plan is refused once it is older than this, even when
    the warehouse it was built on is unchanged: the world outside the warehouse moves too."""

    max_age_minutes: float = Field(default=720.0, gt=0, le=7 * 24 * 60, allow_inf_nan=False)


class DeferredSettings(Section):
    """Deferred sends (section NBA_DEFERRED__): a decision deferred by quiet hours is sent by the first
    live run at or after its send-at time, unless that run comes more than this late: then the
    decision is stale and closed unsent (the next daily decision takes its place)."""

    max_late_hours: float = Field(default=72.0, gt=0, le=24 * 30, allow_inf_nan=False)


class AlertSettings(Section):
    """Where a failed or partial live run posts its alert (section NBA_ALERTS__): a JSON POST signed
    like the destination webhook (`X-NBA-Signature: t=<ts>,v1=<HMAC-SHA256(secret, "<ts>.<body>")>`)."""

    webhook_url: HttpURL | None = None  # a host too: "http://" alone was taken as a URL
    secret: SecretStr | None = None
    timeout_s: float = Field(default=10.0, gt=0, le=120, allow_inf_nan=False)

    @model_validator(mode="after")
    def _complete(self) -> AlertSettings:
        if self.webhook_url is None:
            return self
        if self.secret is None or not self.secret.get_secret_value():
            raise ConfigError(
                "NBA_ALERTS__SECRET", "is required with NBA_ALERTS__WEBHOOK_URL (alerts are signed)"
            )
        return self


class DestinationSections(PydanticBaseSettingsSource):
    """`NBA_<NAME>__<FIELD>` of every registered destination, read with the other settings: a
    destination's section is its own, so the settings model names none of them."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        prefixes = {f"NBA_{name.upper()}__": name for name in registry.names()}
        found: dict[str, dict[str, str]] = {}
        for key, value in os.environ.items():
            for prefix, name in prefixes.items():
                if key.upper().startswith(prefix):
                    found.setdefault(name, {})[key[len(prefix) :].lower()] = value
        return {"sections": found} if found else {}


class ActivateSettings(RunConfig):
    """`nba-activate activate` / `make activate`."""

    dry_run: bool = True
    force: bool = False  # send even if the circuit breaker trips
    limit: Annotated[int, Field(ge=1)] | None = None  # only the first N segmented customers
    output: Literal["table", "json"] = "table"
    destinations: Annotated[list[str], NoDecode] = Field(default_factory=list)
    delivery: DeliverySettings = DeliverySettings()
    plan: PlanSettings = PlanSettings()
    deferred: DeferredSettings = DeferredSettings()
    alerts: AlertSettings = AlertSettings()
    # each destination's raw section as given (NBA_<NAME>__*, or `<name>={...}`);
    # `destination_settings` validates the ones this run sends to
    sections: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources = super().settings_customise_sources(
            settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
        )
        return (*sources, DestinationSections(settings_cls)) if env_settings in sources else sources

    @model_validator(mode="before")
    @classmethod
    def _gather_sections(cls, data: Any) -> Any:
        """A destination's section given by its name (`hubspot={...}`) joins the others."""
        if not isinstance(data, dict) or not any(name in data for name in registry.names()):
            return data
        data = dict(data)
        sections = dict(data.get("sections") or {})
        for name in registry.names():
            if name in data:
                sections[name] = {**sections.get(name, {}), **data.pop(name)}
        return {**data, "sections": sections}

    @field_validator("destinations", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        known = registry.names()
        names = [n.strip().lower() for n in v.split(",") if n.strip()] if isinstance(v, str) else v
        unknown = [n for n in names if n not in known] if isinstance(names, list) else []
        if unknown:
            raise ValueError(f"unknown destination(s) {unknown}; known: {', '.join(known)}")
        return names

    @model_validator(mode="after")
    def _live_needs_destinations(self) -> ActivateSettings:
        if not self.dry_run and not self.destinations:
            raise ConfigError(
                "NBA_DESTINATIONS",
                "a live run needs at least one destination, e.g. hubspot,salesforce,webhook",
            )
        for name in self.sending_to:
            self.destination_settings(name)  # fail now, naming the missing variable
        return self

    @property
    def sending_to(self) -> list[str]:
        """The destinations of this run: NBA_DESTINATIONS, or every registered one on a dry run without it."""
        return list(self.destinations) or (list(registry.names()) if self.dry_run else [])

    def destination_settings(self, name: str) -> Section:
        """The validated settings of one destination (dry run: placeholders for what is not set)."""
        return registry.get(name).settings_from(self.sections.get(name, {}), dry_run=self.dry_run)
