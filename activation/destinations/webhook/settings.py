"""The webhook destination's settings (section NBA_WEBHOOK__): where it posts, the signing secret and pace."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from activation.destinations.registry import SettingProblem
from core.config import HttpURL, Section

# a dry run builds payloads only: it needs no credentials and no endpoint
DRY_RUN = {"url": "https://dry-run.invalid/hooks/nba", "secret": "dry-run-no-secret"}


class WebhookSettings(Section):
    url: HttpURL
    secret: SecretStr
    rate_per_s: int = Field(default=50, gt=0)

    @model_validator(mode="after")
    def _secret_given(self) -> WebhookSettings:
        """An empty secret was taken: every request was then signed with an empty key."""
        if not self.secret.get_secret_value().strip():
            raise SettingProblem(
                "secret", "is empty: set it to the secret the receiver checks signatures with"
            )
        return self
