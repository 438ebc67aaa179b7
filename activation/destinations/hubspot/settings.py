"""The HubSpot destination's settings (section NBA_HUBSPOT__): token, endpoint, id property and limits."""

from __future__ import annotations

from pydantic import Field, SecretStr

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
