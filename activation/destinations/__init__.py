"""Destinations: one subfolder each (its connector, its settings section, its dry-run placeholders)
implementing `base.Destination`, described by a `registry.DestinationType` and registered below, one
line each. Registration order is a dry run's order when NBA_DESTINATIONS is not set."""

from __future__ import annotations

from typing import TYPE_CHECKING

from activation.destinations import registry
from activation.destinations.base import Destination, ItemResult, OutboundItem, RateLimit
from activation.destinations.hubspot import HUBSPOT
from activation.destinations.salesforce import SALESFORCE
from activation.destinations.webhook import WEBHOOK

if TYPE_CHECKING:
    from activation.settings import ActivateSettings

registry.register(HUBSPOT)
registry.register(SALESFORCE)
registry.register(WEBHOOK)


def destinations_for(settings: ActivateSettings) -> list[Destination]:
    """The destinations this run sends to (`ActivateSettings.sending_to`), each opened with its
    validated settings. A dry run needs no credentials: what is not set gets the destination's
    placeholder, since a dry run only builds payloads (which never contain them)."""
    timeout_s = settings.delivery.request_timeout_s
    return [
        registry.get(name).connect(settings.destination_settings(name), timeout_s=timeout_s)
        for name in settings.sending_to
    ]


__all__ = ["Destination", "ItemResult", "OutboundItem", "RateLimit", "destinations_for", "registry"]
