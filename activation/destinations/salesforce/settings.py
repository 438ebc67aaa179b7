"""The Salesforce destination's settings (section NBA_SALESFORCE__): instance, session, external ids and pace."""

from __future__ import annotations

from pydantic import Field, SecretStr

from core.config import HttpURL, Section

# a dry run builds payloads only: it needs no credentials and no endpoint
DRY_RUN = {"instance_url": "https://dry-run.invalid", "session_id": "dry-run-no-secret"}


class SalesforceSettings(Section):
    instance_url: HttpURL
    session_id: SecretStr
    api_version: str = "62.0"
    external_id_field: str = "NBA_Customer_Id__c"
    task_external_id_field: str = "NBA_Decision_Id__c"
    rate_per_s: int = Field(default=20, gt=0)  # no burst limit at Salesforce: our own declared pace
    ca_bundle: str | None = (
        None  # CA file to trust (a self-signed local server); wins over REQUESTS_CA_BUNDLE
    )
    max_batch: int = Field(default=200, gt=0, le=200)
