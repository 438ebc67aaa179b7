"""The Salesforce destination's settings (section NBA_SALESFORCE__): how it signs in, external ids, pace.

Three ways to sign in (`auth`):
- `session` (default): a session id and the instance URL, as before; a session id expires, so this
  suits a one-off run, not an unattended one;
- `jwt`: the OAuth 2.0 JWT bearer flow of a connected app: an assertion (iss: the consumer key,
  sub: the username, aud: the login URL, exp) signed with the private key whose certificate the
  connected app holds, exchanged at `<login_url>/services/oauth2/token` for an access token and the
  instance URL; no password, no refresh token, a new token whenever one is needed;
- `client_credentials`: the consumer key and secret of a connected app with a run-as user, at the
  same token endpoint (Salesforce requires the org's My Domain login URL for this flow).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from activation.destinations.registry import SettingProblem
from core.config import HttpURL, Section

# a dry run builds payloads only: it needs no credentials and no endpoint
DRY_RUN = {"instance_url": "https://dry-run.invalid", "session_id": "dry-run-no-secret"}
LOGIN_URL = "https://login.salesforce.com"
MAX_KEY_BYTES = 64 * 1024  # a PEM RSA key is a few KB (16384 bits: about 12 KB)


_API_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,79}")


def _check_ca_bundle(path: str) -> None:
    """A CA file that holds no certificate failed every request as a bare ConnectionError."""
    import ssl

    try:
        ssl.create_default_context(cafile=path)
    except (ssl.SSLError, OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or "no PEM certificate in it"
        raise SettingProblem(
            "ca_bundle",
            f"{path} cannot be read as a CA bundle ({reason}): point it at the PEM CA bundle to trust",
        ) from None


class SalesforceSettings(Section):
    auth: Literal["session", "jwt", "client_credentials"] = "session"
    instance_url: HttpURL | None = None  # session: required; OAuth: from the token answer unless set
    session_id: SecretStr | None = None
    login_url: HttpURL = LOGIN_URL  # OAuth token endpoint's host; also the JWT audience
    consumer_key: str | None = None  # the connected app's consumer key (client id)
    username: str | None = None  # jwt: the user the run acts as
    private_key_file: Path | None = None  # jwt: PEM private key whose certificate the app holds
    private_key: SecretStr | None = None  # jwt: the same key inline (from a secret store)
    consumer_secret: SecretStr | None = None  # client_credentials
    jwt_lifetime_s: int = Field(default=180, gt=0, le=3600)  # Salesforce accepts at most 3 minutes
    api_version: str = "62.0"
    external_id_field: str = "NBA_Customer_Id__c"
    task_external_id_field: str = "NBA_Decision_Id__c"
    rate_per_s: int = Field(default=20, gt=0)  # no burst limit at Salesforce: our own declared pace
    ca_bundle: str | None = (
        None  # CA file to trust (a self-signed local server); wins over REQUESTS_CA_BUNDLE
    )
    max_batch: int = Field(default=200, gt=0, le=200)

    @field_validator(
        "consumer_key",
        "username",
        "private_key_file",
        "private_key",
        "consumer_secret",
        "session_id",
        mode="before",
    )
    @classmethod
    def _blank_is_not_given(cls, value: object) -> object:
        """An empty or blank credential is a missing one, named as such (a blank consumer key went to
        the token endpoint; an empty key file path was read as the current folder, "Is a directory")."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _sign_in(self) -> SalesforceSettings:
        """Every setting the chosen way of signing in needs, each named when missing or unusable."""
        need: dict[str, tuple[str, ...]] = {
            "session": ("instance_url", "session_id"),
            "jwt": ("consumer_key", "username"),
            "client_credentials": ("consumer_key", "consumer_secret"),
        }
        for name in need[self.auth]:
            if not getattr(self, name):
                raise SettingProblem(name, f"is required with NBA_SALESFORCE__AUTH={self.auth}")
        if self.auth == "jwt":
            self.private_key_pem()
        if not re.fullmatch(
            r"\d{2,3}\.0", self.api_version
        ):  # else every request is a 404, a dead letter each
            raise SettingProblem(
                "api_version",
                f"must be a Salesforce REST API version such as 62.0 (got {self.api_version!r})",
            )
        if self.ca_bundle and not Path(self.ca_bundle).exists():  # else every request fails on it
            raise SettingProblem(
                "ca_bundle", f"no file or folder at {self.ca_bundle}: point it at the PEM CA bundle to trust"
            )
        if self.ca_bundle and Path(self.ca_bundle).is_file():
            _check_ca_bundle(self.ca_bundle)
        for name in ("external_id_field", "task_external_id_field"):
            value = getattr(self, name)
            if not _API_NAME.fullmatch(value):  # it is a segment of every request's URL path
                raise SettingProblem(
                    name, f"must be a Salesforce field API name such as NBA_Customer_Id__c (got {value!r})"
                )
        return self

    def private_key_pem(self) -> bytes:
        """The JWT signing key (PEM), checked: a readable RSA private key."""
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        if self.private_key is not None:
            name, pem = "private_key", self.private_key.get_secret_value().encode()
        elif self.private_key_file is not None:
            name = "private_key_file"
            try:
                with self.private_key_file.open("rb") as file:  # never a whole /dev/zero into memory
                    pem = file.read(MAX_KEY_BYTES + 1)
            except OSError as exc:
                raise SettingProblem(name, f"cannot be read ({exc.strerror or type(exc).__name__})") from None
            if len(pem) > MAX_KEY_BYTES:
                raise SettingProblem(
                    name,
                    f"is not a PEM private key (it is over {MAX_KEY_BYTES // 1024} KB, a key is a few KB)",
                )
        else:
            raise SettingProblem("private_key_file", "is required with NBA_SALESFORCE__AUTH=jwt")
        try:
            key = load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            raise SettingProblem(name, "is not an unencrypted PEM private key") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SettingProblem(
                name, "must be an RSA key (Salesforce signs JWT bearer assertions with RS256)"
            )
        return pem
