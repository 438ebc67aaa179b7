"""HubSpot: contacts upserted by an external id property, in batches of up to 100."""

from activation.destinations.hubspot.connector import HubSpotDestination
from activation.destinations.hubspot.settings import DRY_RUN, HubSpotSettings
from activation.destinations.registry import DestinationType

HUBSPOT = DestinationType(
    name="hubspot", settings=HubSpotSettings, connect=HubSpotDestination, dry_run=DRY_RUN
)

__all__ = ["HUBSPOT", "HubSpotDestination", "HubSpotSettings"]
