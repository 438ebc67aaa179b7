"""Signing in to Salesforce with OAuth 2.0 (JWT bearer or client credentials) at the configured
login URL.

simple-salesforce builds the assertion and the token URL itself only for `https://<domain>.salesforce.com`,
so the assertion (the same claims it uses: iss, sub, aud, exp; RS256) is built here and posted with
its `token_login`, which parses the answer (access token, instance URL) and raises
SalesforceAuthenticationFailed on a refusal. A refusal becomes one line naming the setting to fix;
the destination takes nothing more in that run (DestinationBlockedError).
"""

from __future__ import annotations

import base64
import time
import warnings
from typing import Any, cast

import jwt
import requests
from simple_salesforce.exceptions import SalesforceAuthenticationFailed
from simple_salesforce.login import token_login

from activation.destinations.salesforce.settings import SalesforceSettings
from activation.errors import DestinationBlockedError, TransientError

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# what Salesforce's refusal names -> the setting to fix (first match)
_BLAME = (
    ("client identifier", "CONSUMER_KEY"),
    ("client_id", "CONSUMER_KEY"),
    ("client secret", "CONSUMER_SECRET"),
    ("audience", "LOGIN_URL"),
    ("approved", "USERNAME (and that the connected app pre-authorizes that user's profile)"),
    ("user", "USERNAME"),
    ("expired", "JWT_LIFETIME_S (and this machine's clock)"),
)


class _Verified:
    """The session, posting with our CA bundle and timeout: requests lets REQUESTS_CA_BUNDLE win over a
    session's own `verify`, and token_login passes neither."""

    def __init__(self, session: requests.Session, ca_bundle: str | None, timeout_s: float) -> None:
        self.session, self.ca_bundle, self.timeout_s = session, ca_bundle, timeout_s

    def post(self, url: str, data: Any, **kwargs: Any) -> requests.Response:
        if self.ca_bundle:
            kwargs["verify"] = self.ca_bundle
        return self.session.post(url, data, timeout=self.timeout_s, **kwargs)


class OAuthLogin:
    """Gets access tokens for one destination; remembers the latest, so logs can be scrubbed of it."""

    def __init__(self, settings: SalesforceSettings, session: requests.Session, timeout_s: float) -> None:
        self.settings, self.session, self.timeout_s = settings, session, timeout_s
        self._token: str | None = None

    def secrets(self) -> tuple[str, ...]:
        return (self._token,) if self._token else ()

    def token(self) -> tuple[str, str]:
        """(access token, instance URL)."""
        s = self.settings
        url = f"{s.login_url.rstrip('/')}/services/oauth2/token"
        headers = None
        if s.auth == "jwt":
            data = {"grant_type": JWT_GRANT, "assertion": self.assertion()}
        else:
            secret = s.consumer_secret.get_secret_value() if s.consumer_secret else ""
            basic = base64.b64encode(f"{s.consumer_key}:{secret}".encode()).decode()
            data, headers = {"grant_type": "client_credentials"}, {"Authorization": f"Basic {basic}"}
        try:
            post = cast(requests.Session, _Verified(self.session, s.ca_bundle, self.timeout_s))
            with warnings.catch_warnings():  # its multi-line hint on an unapproved user: our line says it
                warnings.simplefilter("ignore")
                token, instance = token_login(url, data, "login", s.consumer_key or "", headers, None, post)
        except SalesforceAuthenticationFailed as exc:
            raise DestinationBlockedError(self.refusal(exc), destination="salesforce") from None
        except requests.RequestException as exc:
            msg = f"OAuth token endpoint {url} unreachable ({type(exc).__name__}): check NBA_SALESFORCE__LOGIN_URL"
            raise TransientError(msg, destination="salesforce") from None
        except (
            AttributeError,
            TypeError,
            ValueError,
        ):  # an answer that is not Salesforce's shape (a 5xx page)
            msg = f"OAuth token endpoint {url} answered unexpectedly: retried by the next run"
            raise TransientError(msg, destination="salesforce") from None
        self._token = str(token)
        return self._token, f"https://{instance}"

    def assertion(self) -> str:
        s = self.settings
        claims = {
            "iss": s.consumer_key,
            "sub": s.username,
            "aud": s.login_url.rstrip("/"),
            "exp": int(time.time()) + s.jwt_lifetime_s,
        }
        return jwt.encode(claims, s.private_key_pem(), algorithm="RS256")

    def refusal(self, exc: SalesforceAuthenticationFailed) -> str:
        """One line: what Salesforce said and the setting to look at."""
        said = f"{exc.code}: {exc.auth_message}" if exc.code else str(exc.auth_message)
        text = said.lower()
        blame = next((name for key, name in _BLAME if key in text), None)
        if blame is None:
            blame = (
                "PRIVATE_KEY_FILE (its certificate must be the connected app's)"
                if self.settings.auth == "jwt"
                else "CONSUMER_SECRET"
            )
        return f"Salesforce refused the OAuth {self.settings.auth} sign-in ({said}): check NBA_SALESFORCE__{blame}"
