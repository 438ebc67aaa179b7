from activation.destinations.hubspot.connector import HubSpotDestination

__all__ = ["HubSpotDestination"]
