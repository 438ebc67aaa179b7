"""A signed JSON webhook: one POST per decision, HMAC-signed, with a stable idempotency key."""

from activation.destinations.registry import DestinationType
from activation.destinations.webhook.connector import WebhookDestination, sign
from activation.destinations.webhook.settings import DRY_RUN, WebhookSettings

WEBHOOK = DestinationType(
    name="webhook", settings=WebhookSettings, connect=WebhookDestination, dry_run=DRY_RUN
)

__all__ = ["WEBHOOK", "WebhookDestination", "WebhookSettings", "sign"]
