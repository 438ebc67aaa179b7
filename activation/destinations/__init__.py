"""Destinations: one subfolder each, one class each, all implementing `base.Destination`."""

from __future__ import annotations

from collections.abc import Mapping

from activation.destinations.base import Destination, ItemResult, OutboundItem, RateLimit
from activation.errors import ConfigError
from activation.settings import HubSpotSettings, SalesforceSettings, WebhookSettings, enabled_destinations

# A dry run builds payloads only: it needs no credentials and no endpoint (payloads never hold them).
DRY_RUN_PLACEHOLDERS: dict[str, dict[str, str]] = {
    "hubspot": {"token": "dry-run-no-secret"},
    "salesforce": {"instance_url": "https://dry-run.invalid", "session_id": "dry-run-no-secret"},
    "webhook": {"url": "https://dry-run.invalid/hooks/nba", "secret": "dry-run-no-secret"},
}


def destinations_from_env(
    env: Mapping[str, str] | None = None, *, dry_run: bool = False, timeout_s: float = 30.0
) -> list[Destination]:
    """Build the destinations named in NBA_DESTINATIONS, each reading its own NBA_<NAME>__* settings.

    Live: NBA_DESTINATIONS must name at least one, and each needs its credentials (ConfigError names
    the missing variable). Dry run: NBA_DESTINATIONS defaults to all three and credentials/URLs that
    are not set get placeholders, since a dry run only builds payloads (which never contain them).
    """
    from activation.destinations.hubspot import HubSpotDestination
    from activation.destinations.salesforce import SalesforceDestination
    from activation.destinations.webhook import WebhookDestination

    names = enabled_destinations(env)
    if not names:
        if not dry_run:
            raise ConfigError("a live run needs at least one destination", var="NBA_DESTINATIONS")
        names = ["hubspot", "salesforce", "webhook"]
    out: list[Destination] = []
    for name in names:
        defaults = DRY_RUN_PLACEHOLDERS[name] if dry_run else None
        if name == "hubspot":
            out.append(
                HubSpotDestination(HubSpotSettings.from_env(env, defaults=defaults), timeout_s=timeout_s)
            )
        elif name == "salesforce":
            sf = SalesforceSettings.from_env(env, defaults=defaults)
            out.append(SalesforceDestination(sf, timeout_s=timeout_s))
        else:
            out.append(
                WebhookDestination(WebhookSettings.from_env(env, defaults=defaults), timeout_s=timeout_s)
            )
    return out


__all__ = ["Destination", "ItemResult", "OutboundItem", "RateLimit", "destinations_from_env"]
