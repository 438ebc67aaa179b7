"""Local destination servers implementing the HubSpot, Salesforce and webhook contracts on 127.0.0.1.

In-process:  `with HubSpotServer(rate_limit=100, rate_window_s=10, seed=1) as hs: hs.url, hs.stats()`.
Standalone:  `python -m testing.local_servers {hubspot|salesforce|webhook|all} [--port N] [knobs]`.
"""

from testing.local_servers.common import Knobs, LocalServer
from testing.local_servers.hubspot import HubSpotServer
from testing.local_servers.salesforce import SalesforceServer
from testing.local_servers.webhook import WebhookServer

SERVERS: dict[str, type[LocalServer]] = {
    "hubspot": HubSpotServer,
    "salesforce": SalesforceServer,
    "webhook": WebhookServer,
}

__all__ = ["SERVERS", "HubSpotServer", "Knobs", "LocalServer", "SalesforceServer", "WebhookServer"]
