"""Destinations: one subfolder each, one class each, all implementing `base.Destination`."""

from __future__ import annotations

from collections.abc import Mapping

from activation.destinations.base import Destination, ItemResult, OutboundItem, RateLimit
from activation.settings import HubSpotSettings, SalesforceSettings, WebhookSettings, enabled_destinations


def destinations_from_env(
    env: Mapping[str, str] | None = None, *, timeout_s: float = 30.0
) -> list[Destination]:
    """Build the destinations named in NBA_DESTINATIONS, each reading its own NBA_<NAME>__* settings."""
    from activation.destinations.hubspot import HubSpotDestination
    from activation.destinations.salesforce import SalesforceDestination
    from activation.destinations.webhook import WebhookDestination

    out: list[Destination] = []
    for name in enabled_destinations(env):
        if name == "hubspot":
            out.append(HubSpotDestination(HubSpotSettings.from_env(env), timeout_s=timeout_s))
        elif name == "salesforce":
            out.append(SalesforceDestination(SalesforceSettings.from_env(env), timeout_s=timeout_s))
        else:
            out.append(WebhookDestination(WebhookSettings.from_env(env), timeout_s=timeout_s))
    return out


__all__ = ["Destination", "ItemResult", "OutboundItem", "RateLimit", "destinations_from_env"]
