"""Salesforce OAuth over real HTTPS against the local server's token endpoint: the JWT bearer flow
sends, a wrong key or an expired assertion is refused in one line naming the setting, client
credentials work, the session id still works, and no secret reaches a log line or the ops tables."""

from __future__ import annotations

import contextlib
import logging
import resource
from collections.abc import Iterator
from pathlib import Path

import pytest
from connectors import salesforce_for
from delivery_factory import make_decision, make_decisions

from activation.delivery import deliver
from activation.destinations.registry import get
from activation.destinations.salesforce import SalesforceDestination, SalesforceSettings
from core.errors import ConfigError
from testing.local_servers.salesforce import OAuthApp, SalesforceServer, jwt_key_pair

KEY, USER = "3MVG9-consumer-key", "integration@nba.example"


@pytest.fixture
def keys(tmp_path: Path) -> tuple[str, str]:
    return jwt_key_pair(tmp_path / "app")


def jwt_dest(server: SalesforceServer, key_file: str, **kw) -> SalesforceDestination:
    settings = SalesforceSettings(
        auth="jwt", login_url=server.url, consumer_key=KEY, username=USER, private_key_file=Path(key_file),
        ca_bundle=server.cert_path, rate_per_s=1000, **kw,
    )  # fmt: skip
    return SalesforceDestination(settings, timeout_s=10)


def send(con, dest, fast, n=5, run_id="r1", decisions=None):
    return deliver(
        decisions or make_decisions(n, with_tasks=False), con=con, run_id=run_id, dry_run=False, outbox_dir=Path("/nonexistent"),
        destinations=[dest], settings=fast,
    ).destinations["salesforce"]  # fmt: skip


def test_jwt_bearer_signs_in_and_sends(con, fast, keys) -> None:
    key_file, cert = keys
    with SalesforceServer(seed=2, oauth=OAuthApp(KEY, USER, certificate=cert)) as server:
        sf = send(con, jwt_dest(server, key_file), fast)
        stats = server.stats()
        assert server.contact("C00000")["NBA_Customer_Id__c"] == "C00000"
    assert (sf.delivered, sf.failed, sf.blocked) == (5, 0, None)
    assert stats["token_grants"] == 1 and stats["unique_records"] == 5
    assert con.execute("select count(*) from ops.contact_ledger").fetchone()[0] == 5


@pytest.mark.parametrize(
    ("app", "setting"),
    [
        ("wrong_key", "NBA_SALESFORCE__PRIVATE_KEY_FILE"),
        ("expired", "NBA_SALESFORCE__JWT_LIFETIME_S"),
        ("other_user", "NBA_SALESFORCE__USERNAME"),
        ("other_key", "NBA_SALESFORCE__CONSUMER_KEY"),
    ],
)
def test_a_refused_assertion_is_one_line_naming_the_setting(con, fast, keys, tmp_path, app, setting) -> None:
    key_file, cert = keys
    other_key, other_cert = jwt_key_pair(tmp_path / "other")
    oauth = {
        "wrong_key": OAuthApp(KEY, USER, certificate=other_cert),  # the app holds another certificate
        "expired": OAuthApp(KEY, USER, certificate=cert, clock_skew_s=600),  # our clock is slow
        "other_user": OAuthApp(KEY, "someone@else.example", certificate=cert),
        "other_key": OAuthApp("another-app", USER, certificate=cert),
    }[app]
    with SalesforceServer(seed=2, oauth=oauth) as server:
        sf = send(con, jwt_dest(server, key_file), fast)
        stats = server.stats()
    assert sf.delivered == 0 and sf.failed == 5 and sf.blocked is not None
    assert "\n" not in sf.blocked and "Salesforce refused the OAuth jwt sign-in" in sf.blocked
    assert sf.blocked.endswith(setting) or f"check {setting}" in sf.blocked
    assert stats["unique_records"] == 0 and stats.get("token_grants", 0) == 0


def test_client_credentials_and_the_session_id_still_work(con, fast, salesforce_server) -> None:
    app = OAuthApp(KEY, USER, consumer_secret="app-secret")
    with SalesforceServer(seed=2, oauth=app) as server:
        settings = SalesforceSettings(
            auth="client_credentials", login_url=server.url, consumer_key=KEY,
            consumer_secret="app-secret", ca_bundle=server.cert_path, rate_per_s=1000,
        )  # fmt: skip
        assert send(con, SalesforceDestination(settings, timeout_s=10), fast).delivered == 5
    others = [make_decision(i) for i in range(20, 25)]
    sf = send(con, salesforce_for(salesforce_server), fast, run_id="r2", decisions=others)  # a session id
    assert sf.delivered == 5 and "token_grants" not in salesforce_server.stats()


@contextlib.contextmanager
def _memory_bounded(extra: int = 2 << 30) -> Iterator[None]:
    """At most `extra` more bytes of address space meanwhile: a key file read whole (/dev/zero) fails
    this test with a MemoryError instead of growing the test process without end."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    size = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (size + extra if hard == resource.RLIM_INFINITY else hard, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.mark.parametrize(
    ("given", "variable"),
    [
        ({"auth": "jwt", "username": USER, "private_key_file": "k.pem"}, "NBA_SALESFORCE__CONSUMER_KEY"),
        ({"auth": "jwt", "consumer_key": KEY, "private_key_file": "k.pem"}, "NBA_SALESFORCE__USERNAME"),
        ({"auth": "jwt", "consumer_key": KEY, "username": USER}, "NBA_SALESFORCE__PRIVATE_KEY_FILE"),
        ({"auth": "jwt", "consumer_key": KEY, "username": USER, "private_key_file": "/no/such.pem"},
         "NBA_SALESFORCE__PRIVATE_KEY_FILE"),
        ({"auth": "jwt", "consumer_key": KEY, "username": USER, "private_key": "not a key"},
         "NBA_SALESFORCE__PRIVATE_KEY"),
        ({"auth": "jwt", "consumer_key": KEY, "username": USER, "private_key_file": "KEY",
          "login_url": "login.salesforce.com"}, "NBA_SALESFORCE__LOGIN_URL"),
        ({"auth": "client_credentials", "consumer_key": KEY}, "NBA_SALESFORCE__CONSUMER_SECRET"),
        # blank: the consumer key "   " went to the token endpoint (the run then failed, exit 1), an
        # empty key file path was read as the current folder ("cannot be read (Is a directory)")
        ({"auth": "jwt", "consumer_key": "   ", "username": USER, "private_key_file": "KEY"},
         "NBA_SALESFORCE__CONSUMER_KEY"),
        ({"auth": "jwt", "consumer_key": KEY, "username": " ", "private_key_file": "KEY"},
         "NBA_SALESFORCE__USERNAME"),
        ({"auth": "jwt", "consumer_key": KEY, "username": USER, "private_key_file": ""},
         "NBA_SALESFORCE__PRIVATE_KEY_FILE"),
        ({"auth": "client_credentials", "consumer_key": KEY, "consumer_secret": "  "},
         "NBA_SALESFORCE__CONSUMER_SECRET"),
        # /dev/zero as the key file: read whole, the run grew to 15 GB of memory and never ended
        ({"auth": "jwt", "consumer_key": KEY, "username": USER, "private_key_file": "/dev/zero"},
         "NBA_SALESFORCE__PRIVATE_KEY_FILE"),
        ({"auth": "session", "instance_url": "https://x.my.salesforce.com"}, "NBA_SALESFORCE__SESSION_ID"),
        # a CA bundle that is not there failed every request of a live run, with a traceback each
        ({"auth": "session", "instance_url": "https://x.my.salesforce.com", "session_id": "s",
          "ca_bundle": "/no/such/ca.pem"}, "NBA_SALESFORCE__CA_BUNDLE"),
        # a CA bundle with no certificate in it (here: a private key) failed every request as a bare
        # ConnectionError, exit 1, naming no setting
        ({"auth": "session", "instance_url": "https://x.my.salesforce.com", "session_id": "s",
          "ca_bundle": "KEY"}, "NBA_SALESFORCE__CA_BUNDLE"),
        # an external id field is a segment of every request's URL path: "x'; drop" or "../.." was sent
        ({"auth": "session", "instance_url": "https://x.my.salesforce.com", "session_id": "s",
          "external_id_field": "x'; drop"}, "NBA_SALESFORCE__EXTERNAL_ID_FIELD"),
        ({"auth": "session", "instance_url": "https://x.my.salesforce.com", "session_id": "s",
          "task_external_id_field": "../../sobjects/User"}, "NBA_SALESFORCE__TASK_EXTERNAL_ID_FIELD"),
        # an API version Salesforce has not (every request a 404: each row a dead letter)
        ({"auth": "session", "instance_url": "https://x.my.salesforce.com", "session_id": "s",
          "api_version": "abc"}, "NBA_SALESFORCE__API_VERSION"),
    ],
)  # fmt: skip
def test_settings_name_the_variable_to_set(keys, given, variable) -> None:
    given = {k: keys[0] if v == "KEY" else v for k, v in given.items()}
    with pytest.raises(ConfigError) as err, _memory_bounded():
        get("salesforce").settings_from(given, dry_run=False)
    assert str(err.value).startswith(f"{variable}:") and "\n" not in str(err.value)
    assert "Is a directory" not in str(err.value)


def test_secrets_never_reach_logs_or_the_ops_tables(con, fast, keys, caplog) -> None:
    key_file, cert = keys
    token, secret = "SENTINEL-TOKEN-5f1c", "SENTINEL-SECRET-9a2e"
    pem = Path(key_file).read_text()
    caplog.set_level(logging.DEBUG)
    with SalesforceServer(seed=2, session_id=token, oauth=OAuthApp(KEY, USER, certificate=cert)) as server:
        dest = jwt_dest(server, key_file)
        assert send(con, dest, fast, n=3).delivered == 3
        # then the server rejects every write (500): errors are logged and stored
        server.knobs.error_rate = 1.0
        later = [make_decision(i) for i in range(10, 13)]
        sf = send(con, dest, fast, run_id="r2", decisions=later)
    assert sf.failed == 3
    bad = SalesforceSettings(
        auth="client_credentials", login_url="https://127.0.0.1:9", consumer_key=KEY, consumer_secret=secret
    )
    stored = con.execute("select string_agg(coalesce(error, ''), ' ') from ops.delivery_log").fetchone()[
        0
    ] + " ".join(str(r) for r in con.execute("select * from ops.delivery_state").fetchall())
    shown = " ".join([caplog.text, stored, repr(bad), str(bad.model_dump()), repr(dest.settings)])
    for value in (token, secret, pem.splitlines()[1]):
        assert value not in shown
    assert token in dest.secrets  # what the delivery engine scrubs from every error it stores
