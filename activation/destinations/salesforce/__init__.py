from activation.destinations.salesforce.connector import SalesforceDestination

__all__ = ["SalesforceDestination"]
