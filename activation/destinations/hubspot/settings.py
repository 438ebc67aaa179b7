"""The HubSpot destination's settings (section NBA_HUBSPOT__): token, endpoint, id property and limits."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from activation.destinations.registry import SettingProblem
from core.config import HttpURL, Section

# a dry run builds payloads only: it needs no credentials and no endpoint
DRY_RUN = {"token": "dry-run-no-secret"}


class HubSpotSettings(Section):
    token: SecretStr
    base_url: HttpURL = "https://api.hubapi.com"
    id_property: str = "nba_customer_id"
    rate_per_10s: int = Field(default=100, gt=0)  # burst limit of the app's tier: 100 or 190
    rate_window_s: float = Field(default=10.0, gt=0, allow_inf_nan=False)  # the burst window (10 s)
    max_batch: int = Field(default=100, gt=0, le=100)

    @model_validator(mode="after")
    def _token_given(self) -> HubSpotSettings:
        """An empty token was taken: the run then sent every request unauthorised. An empty id
        property was taken too: every upsert then named no property to match contacts by."""
        if not self.token.get_secret_value().strip():
            raise SettingProblem("token", "is empty: set it to the private app's access token")
        if not self.id_property.strip():
            raise SettingProblem(
                "id_property",
                "is empty: set it to the contact property that holds the customer id, or unset it "
                "for the default nba_customer_id",
            )
        return self
