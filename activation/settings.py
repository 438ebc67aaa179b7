"""Settings of the activation layer, read once at construction from environment variables.

One prefix (`NBA_`) and `__` between section and field: `NBA_HUBSPOT__TOKEN`,
`NBA_SALESFORCE__SESSION_ID`, `NBA_WEBHOOK__SECRET`, `NBA_DELIVERY__MAX_RETRIES`. A missing required
variable raises ConfigError naming it. Secrets are `SecretStr`, so a repr or a log line shows `**********`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from activation.errors import ConfigError

PREFIX = "NBA_"
T = TypeVar("T", bound="EnvSection")


class EnvSection(BaseModel):
    """A settings section; subclasses set `section` and declare fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    section: str = Field(default="", exclude=True)

    @classmethod
    def var_name(cls, field: str) -> str:
        section = cls.model_fields["section"].default
        return f"{PREFIX}{section.upper()}__{field.upper()}"

    @classmethod
    def from_env(
        cls: type[T],
        env: Mapping[str, str] | None = None,
        *,
        defaults: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> T:
        """Fields from `NBA_<SECTION>__<FIELD>`; `defaults` fill what the environment leaves unset,
        `overrides` win over it."""
        env = os.environ if env is None else env
        values: dict[str, Any] = dict(defaults or {})
        for name in cls.model_fields:
            if name == "section":
                continue
            var = cls.var_name(name)
            if var in env and env[var] != "":
                values[name] = env[var]
        values.update(overrides)
        try:
            return cls(**values)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else "?"
            kind = "missing" if err["type"] == "missing" else f"invalid: {err['msg']}"
            raise ConfigError(f"{cls.__name__}.{field} is {kind}", var=cls.var_name(field)) from None


class DeliverySettings(EnvSection):
    """How the engine sends: retries, backoff, waits, timeouts (section NBA_DELIVERY__)."""

    section: str = Field(default="delivery", exclude=True)
    max_retries: int = Field(default=4, ge=0)  # transient failures per batch; 429 waits not counted
    backoff_base_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=30.0, ge=0)
    max_rate_limit_wait_s: float = Field(default=300.0, ge=0)  # total 429 waiting per batch
    request_timeout_s: float = Field(default=30.0, gt=0)
    rate_safety_s: float = Field(default=0.05, ge=0)  # widen our window against clock/latency skew
    seed: int | None = None  # jitter seed (tests); None -> system randomness
    max_deviation_pct: float = Field(default=50.0, ge=0)  # circuit breaker
    min_history: int = Field(default=3, ge=1)


class HubSpotSettings(EnvSection):
    section: str = Field(default="hubspot", exclude=True)
    token: SecretStr
    base_url: str = "https://api.hubapi.com"
    id_property: str = "nba_customer_id"
    rate_per_10s: int = Field(default=100, gt=0)  # burst limit of the app's tier: 100 or 190
    rate_window_s: float = Field(default=10.0, gt=0)  # the burst window (10 s at HubSpot)
    max_batch: int = Field(default=100, gt=0, le=100)


class SalesforceSettings(EnvSection):
    section: str = Field(default="salesforce", exclude=True)
    instance_url: str
    session_id: SecretStr
    api_version: str = "62.0"
    external_id_field: str = "NBA_Customer_Id__c"
    task_external_id_field: str = "NBA_Decision_Id__c"
    rate_per_s: int = Field(default=20, gt=0)  # no burst limit at Salesforce: our own declared pace
    ca_bundle: str | None = (
        None  # CA file to trust (a self-signed local server); wins over REQUESTS_CA_BUNDLE
    )
    max_batch: int = Field(default=200, gt=0, le=200)


class WebhookSettings(EnvSection):
    section: str = Field(default="webhook", exclude=True)
    url: str
    secret: SecretStr
    rate_per_s: int = Field(default=50, gt=0)


def enabled_destinations(env: Mapping[str, str] | None = None) -> list[str]:
    """NBA_DESTINATIONS=hubspot,salesforce,webhook (default: none, which means outbox only)."""
    env = os.environ if env is None else env
    raw = env.get(f"{PREFIX}DESTINATIONS", "")
    names = [n.strip().lower() for n in raw.split(",") if n.strip()]
    known = {"hubspot", "salesforce", "webhook"}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"unknown destination(s) {unknown}; known: {sorted(known)}", var="NBA_DESTINATIONS")
    return names
