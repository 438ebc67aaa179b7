"""Connectors pointed at the local servers (shared by the activation tests)."""

from __future__ import annotations

from activation.destinations.hubspot import HubSpotDestination, HubSpotSettings
from activation.destinations.salesforce import SalesforceDestination, SalesforceSettings
from activation.destinations.webhook import WebhookDestination, WebhookSettings
from testing.local_servers import HubSpotServer, SalesforceServer, WebhookServer


def hubspot_for(server: HubSpotServer, **kw) -> HubSpotDestination:
    kw.setdefault("rate_per_10s", server.knobs.rate_limit or 100)
    kw.setdefault("rate_window_s", server.knobs.rate_window_s)
    return HubSpotDestination(HubSpotSettings(token=server.token, base_url=server.url, **kw), timeout_s=10)


def salesforce_for(server: SalesforceServer, **kw) -> SalesforceDestination:
    settings = SalesforceSettings(
        instance_url=server.url,
        session_id=server.session_id,
        ca_bundle=server.cert_path,
        rate_per_s=1000,
        **kw,
    )
    return SalesforceDestination(settings, timeout_s=10)


def webhook_for(server: WebhookServer, **kw) -> WebhookDestination:
    kw.setdefault("secret", server.secret)
    kw.setdefault("rate_per_s", 1000)
    return WebhookDestination(WebhookSettings(url=f"{server.url}/hooks/nba", **kw), timeout_s=10)
