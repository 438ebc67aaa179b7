"""Salesforce: contacts and tasks upserted by external id through the composite API."""

from activation.destinations.registry import DestinationType
from activation.destinations.salesforce.connector import SalesforceDestination
from activation.destinations.salesforce.settings import DRY_RUN, SalesforceSettings

SALESFORCE = DestinationType(
    name="salesforce", settings=SalesforceSettings, connect=SalesforceDestination, dry_run=DRY_RUN
)

__all__ = ["SALESFORCE", "SalesforceDestination", "SalesforceSettings"]
