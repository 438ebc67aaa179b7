from activation.destinations.webhook.connector import WebhookDestination, sign

__all__ = ["WebhookDestination", "sign"]
