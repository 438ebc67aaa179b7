"""The activate command's settings: the shared run settings (core.config.RunConfig) plus how and
where to deliver, built once from flags and `NBA_*` variables (pydantic-settings).

Sections: `NBA_DELIVERY__*` (retries, backoff, waits, timeouts, circuit breaker),
`NBA_HUBSPOT__*`, `NBA_SALESFORCE__*`, `NBA_WEBHOOK__*` (credentials and limits of each
destination), `NBA_DESTINATIONS=hubspot,salesforce,webhook` (which a live run sends to),
`NBA_PLAN__*` (how long a plan may wait for `apply`) and `NBA_ALERTS__*` (where a failed or partial
live run is reported).
Secrets are `SecretStr`, so a repr or a log line shows `**********`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from core.config import RunConfig, Section
from core.contracts import DESTINATIONS, DestinationName
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


class HubSpotSettings(Section):
    token: SecretStr
    base_url: str = "https://api.hubapi.com"
    id_property: str = "nba_customer_id"
    rate_per_10s: int = Field(default=100, gt=0)  # burst limit of the app's tier: 100 or 190
    rate_window_s: float = Field(default=10.0, gt=0, allow_inf_nan=False)  # the burst window (10 s)
    max_batch: int = Field(default=100, gt=0, le=100)


class SalesforceSettings(Section):
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


class WebhookSettings(Section):
    url: str
    secret: SecretStr
    rate_per_s: int = Field(default=50, gt=0)


class PlanSettings(Section):
    """`apply` of a plan (section NBA_PLAN__). A plan is refused once it is older than this, even when
    the warehouse it was built on is unchanged: the world outside the warehouse moves too."""

    max_age_minutes: float = Field(default=720.0, gt=0, le=7 * 24 * 60, allow_inf_nan=False)


class AlertSettings(Section):
    """Where a failed or partial live run posts its alert (section NBA_ALERTS__): a JSON POST signed
    like the destination webhook (`X-NBA-Signature: t=<ts>,v1=<HMAC-SHA256(secret, "<ts>.<body>")>`)."""

    webhook_url: str | None = None
    secret: SecretStr | None = None
    timeout_s: float = Field(default=10.0, gt=0, le=120, allow_inf_nan=False)

    @model_validator(mode="after")
    def _complete(self) -> AlertSettings:
        if self.webhook_url is None:
            return self
        if not self.webhook_url.startswith(("http://", "https://")):
            raise ConfigError("NBA_ALERTS__WEBHOOK_URL", "must be an http:// or https:// URL")
        if self.secret is None or not self.secret.get_secret_value():
            raise ConfigError(
                "NBA_ALERTS__SECRET", "is required with NBA_ALERTS__WEBHOOK_URL (alerts are signed)"
            )
        return self


# A dry run builds payloads only: it needs no credentials and no endpoint (payloads never hold them).
DRY_RUN_PLACEHOLDERS: dict[str, dict[str, str]] = {
    "hubspot": {"token": "dry-run-no-secret"},
    "salesforce": {"instance_url": "https://dry-run.invalid", "session_id": "dry-run-no-secret"},
    "webhook": {"url": "https://dry-run.invalid/hooks/nba", "secret": "dry-run-no-secret"},
}
_SECTIONS: dict[str, type[Section]] = {
    "hubspot": HubSpotSettings,
    "salesforce": SalesforceSettings,
    "webhook": WebhookSettings,
}


class ActivateSettings(RunConfig):
    """`nba-activate activate` / `make activate`."""

    dry_run: bool = True
    force: bool = False  # send even if the circuit breaker trips
    limit: Annotated[int, Field(ge=1)] | None = None  # only the first N segmented customers
    output: Literal["table", "json"] = "table"
    destinations: Annotated[list[DestinationName], NoDecode] = Field(default_factory=list)
    delivery: DeliverySettings = DeliverySettings()
    plan: PlanSettings = PlanSettings()
    alerts: AlertSettings = AlertSettings()
    # raw sections as given; `destination_settings` validates the enabled ones
    hubspot: dict[str, Any] | None = None
    salesforce: dict[str, Any] | None = None
    webhook: dict[str, Any] | None = None

    @field_validator("destinations", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            names = [n.strip().lower() for n in v.split(",") if n.strip()]
            unknown = [n for n in names if n not in DESTINATIONS]
            if unknown:
                raise ValueError(f"unknown destination(s) {unknown}; known: {', '.join(DESTINATIONS)}")
            return names
        return v

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
        """The destinations of this run: NBA_DESTINATIONS, or all three on a dry run without it."""
        return list(self.destinations) or (list(DESTINATIONS) if self.dry_run else [])

    def destination_settings(self, name: str) -> Section:
        """The validated settings of one destination (dry run: placeholders for what is not set)."""
        given = getattr(self, name) or {}
        values = (DRY_RUN_PLACEHOLDERS[name] if self.dry_run else {}) | given
        cls = _SECTIONS[name]
        try:
            return cls.model_validate(values)
        except ValueError as exc:
            from pydantic import ValidationError

            if not isinstance(exc, ValidationError):
                raise
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err.get("loc", ()))
            var = f"NBA_{name.upper()}__{field.upper()}"
            problem = "is required" if err.get("type") == "missing" else str(err.get("msg"))
            if err.get("type") == "extra_forbidden":
                problem = f"is not a setting; valid: {', '.join(f'NBA_{name.upper()}__{f.upper()}' for f in cls.model_fields)}"
            raise ConfigError(var, problem) from None
