"""Destinations: one subfolder each, one class each, all implementing `base.Destination`."""

from __future__ import annotations

from typing import cast

from activation.destinations.base import Destination, ItemResult, OutboundItem, RateLimit
from activation.settings import ActivateSettings, HubSpotSettings, SalesforceSettings, WebhookSettings


def destinations_for(settings: ActivateSettings) -> list[Destination]:
    """The destinations this run sends to (`ActivateSettings.sending_to`), each with its validated
    settings. A dry run needs no credentials: what is not set gets a placeholder, since a dry run
    only builds payloads (which never contain them)."""
    from activation.destinations.hubspot import HubSpotDestination
    from activation.destinations.salesforce import SalesforceDestination
    from activation.destinations.webhook import WebhookDestination

    timeout_s = settings.delivery.request_timeout_s
    out: list[Destination] = []
    for name in settings.sending_to:
        section = settings.destination_settings(name)
        if name == "hubspot":
            out.append(HubSpotDestination(cast(HubSpotSettings, section), timeout_s=timeout_s))
        elif name == "salesforce":
            out.append(SalesforceDestination(cast(SalesforceSettings, section), timeout_s=timeout_s))
        else:
            out.append(WebhookDestination(cast(WebhookSettings, section), timeout_s=timeout_s))
    return out


__all__ = ["Destination", "ItemResult", "OutboundItem", "RateLimit", "destinations_for"]
