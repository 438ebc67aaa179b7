"""Local destination servers implementing the HubSpot, Salesforce and webhook contracts on 127.0.0.1.

In-process:  `with HubSpotServer(rate_limit=100, rate_window_s=10, seed=1) as hs: hs.url, hs.stats()`.
Standalone:  `python -m activation.local_servers {hubspot|salesforce|webhook|all} [--port N] [knobs]`.
"""

from activation.local_servers.common import Knobs, LocalServer
from activation.local_servers.hubspot import HubSpotServer
from activation.local_servers.salesforce import SalesforceServer
from activation.local_servers.webhook import WebhookServer

SERVERS: dict[str, type[LocalServer]] = {
    "hubspot": HubSpotServer,
    "salesforce": SalesforceServer,
    "webhook": WebhookServer,
}

__all__ = ["SERVERS", "HubSpotServer", "Knobs", "LocalServer", "SalesforceServer", "WebhookServer"]
