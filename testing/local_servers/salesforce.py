"""A local Salesforce REST API over HTTPS (self-signed certificate generated at startup).

- Session auth: `Authorization: Bearer <session id>` (simple-salesforce with instance_url +
  session_id); `POST /services/oauth2/token` hands out that session id as the access token (with
  `instance_url`): for grant_type urn:ietf:params:oauth:grant-type:jwt-bearer when the assertion is
  signed (RS256) by the key of the connected app's certificate (`jwt_certificate=`) and its iss (the
  consumer key), sub (the username), aud (this server's URL) and exp (not past) hold; for
  client_credentials when the Basic credentials are the consumer key and secret. Refusals are
  Salesforce's: 400 {"error": "invalid_grant" | "invalid_client_id" | "invalid_client", ...}.
- `GET /services/data/vXX.X/sobjects/{Contact|Task}/describe`: fields with `externalId` flags
  (Contact.NBA_Customer_Id__c and Task.NBA_Decision_Id__c by default; `external_ids=` changes it).
- `PATCH /services/data/vXX.X/composite/sobjects/{SObject}/{ExternalIdField}`: sObject Collections
  upsert, at most 200 records (else EXCEEDED_ID_LIMIT), results in request order with
  id/success/created/errors; a non-external field -> "Provided external ID field does not exist or is
  not accessible"; allOrNone true rolls everything back on any error. Row errors: discount outside
  0..100 -> FIELD_CUSTOM_VALIDATION_EXCEPTION; a Task WhoId that is no Contact ->
  INVALID_CROSS_REFERENCE_KEY; injected partial failures -> UNABLE_TO_LOCK_ROW.
- `POST /services/data/vXX.X/sobjects/Task`: plain create (not idempotent; the connector upserts).
- `Sforce-Limit-Info: api-usage=n/m` on every response; over m -> 403 REQUEST_LIMIT_EXCEEDED.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import re
import ssl
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from testing.local_servers.common import LocalServer, Request, Response, _retry_after, version_of

MAX_RECORDS = 200
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FIELDS = {
    "Contact": [
        "Id", "FirstName", "LastName", "Email", "NBA_Customer_Id__c", "NBA_Segment__c", "NBA_Goal__c",
        "NBA_Score__c", "NBA_Channel__c", "NBA_Template_Id__c", "NBA_Discount_Pct__c", "NBA_Subject__c",
        "NBA_Message__c", "NBA_Last_Decision_Id__c", "NBA_Decided_At__c",
    ],
    "Task": ["Id", "WhoId", "Subject", "Description", "Status", "Priority", "ActivityDate", "NBA_Decision_Id__c"],
}  # fmt: skip
PREFIX = {"Contact": "003", "Task": "00T"}
DATA = r"/services/data/v(?P<v>\d+\.\d+)"
R_DESCRIBE = re.compile(DATA + r"/sobjects/(?P<obj>\w+)/describe/?$")
R_COLLECTION = re.compile(DATA + r"/composite/sobjects/(?P<obj>\w+)/(?P<field>\w+)/?$")
R_CREATE = re.compile(DATA + r"/sobjects/(?P<obj>\w+)/?$")


class SalesforceServer(LocalServer):
    name = "salesforce"
    tls = True
    cert_path: str  # always set in __init__ (the base class allows None for plain-HTTP servers)

    def __init__(
        self,
        *,
        session_id: str = "local-sf-session",
        external_ids: dict[str, set[str]] | None = None,
        cert_dir: str | None = None,
        oauth: OAuthApp | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.session_id = session_id
        self.oauth = oauth
        self.external_ids = external_ids or {
            "Contact": {"NBA_Customer_Id__c"},
            "Task": {"NBA_Decision_Id__c"},
        }
        self.records: dict[str, dict[str, dict[str, Any]]] = {
            "Contact": {},
            "Task": {},
        }  # obj -> Id -> record
        self.by_external: dict[tuple[str, str, str], str] = {}  # (obj, field, value) -> Id
        self.task_versions: dict[str, set[str]] = {}  # decision id -> versions of its Task
        self._seq = 0
        self._cert_dir = Path(cert_dir or tempfile.mkdtemp(prefix="nba-sf-cert-"))
        self.cert_path, self._key_path = _self_signed(self._cert_dir)

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_path, self._key_path)
        return ctx

    # --- vendor shapes ---------------------------------------------------------------------------

    def authorised(self, req: Request) -> bool:
        return (
            req.path == "/services/oauth2/token"
            or req.headers.get("authorization") == f"Bearer {self.session_id}"
        )

    def unauthorised(self) -> Response:
        return Response(401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])

    def too_many(self, retry_after: float, declared: bool) -> Response:
        body = [{"message": "Too many requests", "errorCode": "REQUEST_LIMIT_EXCEEDED_BURST"}]
        return Response(429, body, {"Retry-After": _retry_after(retry_after, exact=not declared)})

    def server_error(self, status: int) -> Response:
        return Response(
            status, [{"message": "Service unavailable (injected)", "errorCode": "SERVER_UNAVAILABLE"}]
        )

    def decorate(self, resp: Response, now: float) -> None:
        resp.headers["Sforce-Limit-Info"] = (
            f"api-usage={self.counters['api_requests']}/{self.knobs.daily_limit}"
        )

    def unique_records(self) -> int:
        return len(self.records["Contact"])

    def extra_stats(self) -> dict[str, Any]:
        return {
            "tasks": len(self.records["Task"]),
            "task_writes": self.counters.get("task_writes", 0),
            "changed_tasks": sum(len(v) > 1 for v in self.task_versions.values()),
        }

    def contact(self, customer_id: str) -> dict[str, Any] | None:
        rid = self.by_external.get(("Contact", "NBA_Customer_Id__c", customer_id))
        return self.records["Contact"].get(rid) if rid else None

    # --- the API ---------------------------------------------------------------------------------

    def route(self, req: Request) -> Response:
        if self.counters["api_requests"] > self.knobs.daily_limit:
            return Response(
                403, [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
            )
        if req.path == "/services/oauth2/token" and req.method == "POST":
            refused = self.oauth.refusal(req, audience=self.url) if self.oauth else None
            if refused is not None:
                return Response(400, {"error": refused[0], "error_description": refused[1]})
            self.counters["token_grants"] = self.counters.get("token_grants", 0) + 1
            return Response(
                200, {"access_token": self.session_id, "instance_url": self.url, "token_type": "Bearer"}
            )
        if req.method == "GET" and (m := R_DESCRIBE.match(req.path)):
            return self._describe(m["obj"])
        if req.method == "PATCH" and (m := R_COLLECTION.match(req.path)):
            return self._collection_upsert(m["obj"], m["field"], req)
        if req.method == "POST" and (m := R_CREATE.match(req.path)):
            return self._create(m["obj"], req)
        return Response(404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])

    def _describe(self, obj: str) -> Response:
        if obj not in FIELDS:
            return Response(
                404, [{"errorCode": "NOT_FOUND", "message": f"sObject type '{obj}' is not supported."}]
            )
        ext = self.external_ids.get(obj, set())
        fields = [
            {
                "name": f,
                "type": "id" if f == "Id" else "string",
                "externalId": f in ext,
                "idLookup": f == "Id" or f in ext,
            }
            for f in FIELDS[obj]
        ]
        return Response(200, {"name": obj, "fields": fields, "createable": True, "updateable": True})

    def _collection_upsert(self, obj: str, field: str, req: Request) -> Response:
        if obj not in FIELDS or field not in self.external_ids.get(obj, set()):
            msg = f"Provided external ID field does not exist or is not accessible: {field}"
            return Response(
                404 if obj not in FIELDS else 400, [{"errorCode": "INVALID_FIELD", "message": msg}]
            )
        body = req.json() or {}
        records = body.get("records") or []
        if len(records) > MAX_RECORDS:
            msg = f"Maximum size of request reached. Maximum size of request is {MAX_RECORDS}."
            return Response(400, [{"errorCode": "EXCEEDED_ID_LIMIT", "message": msg}])
        for rec in records:
            unknown = [f for f in rec if f != "attributes" and f not in FIELDS[obj]]
            if unknown:
                msg = f"No such column '{unknown[0]}' on sobject of type {obj}"
                return Response(400, [{"errorCode": "INVALID_FIELD", "message": msg}])
        planned = [self._check(obj, field, rec) for rec in records]
        failed = any(p is not None for p in planned)
        if body.get("allOrNone") and failed:
            rolled = {
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back",
                "fields": [],
            }
            return Response(200, [{"success": False, "errors": [p or rolled]} for p in planned])
        out = []
        for rec, problem in zip(records, planned, strict=True):
            if problem is not None:
                out.append({"success": False, "errors": [problem]})
                continue
            rid, created = self._upsert(obj, field, rec)
            out.append({"id": rid, "success": True, "errors": [], "created": created})
        return Response(200, out)

    def _check(self, obj: str, field: str, rec: dict[str, Any]) -> dict[str, Any] | None:
        if (rec.get("attributes") or {}).get("type") != obj or not rec.get(field):
            return _err("INVALID_FIELD", f"record needs attributes.type {obj} and a value for {field}")
        pct = rec.get("NBA_Discount_Pct__c")
        if pct is not None and not (isinstance(pct, int | float) and 0 <= pct <= 100):
            return _err(
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "NBA discount must be between 0 and 100",
                ["NBA_Discount_Pct__c"],
            )
        if obj == "Task" and rec.get("WhoId") not in self.records["Contact"]:
            return _err("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["WhoId"])
        if self.knobs.partial_failure_rate and self.rng.random() < self.knobs.partial_failure_rate:
            return _err("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record")
        return None

    def _upsert(self, obj: str, field: str, rec: dict[str, Any]) -> tuple[str, bool]:
        values = {k: v for k, v in rec.items() if k != "attributes"}
        key = (obj, field, str(rec[field]))
        rid = self.by_external.get(key)
        created = rid is None
        if rid is None:
            rid = self._new_id(obj)
            self.by_external[key] = rid
            self.records[obj][rid] = {"Id": rid}
        self.records[obj][rid].update(values)
        if obj == "Contact":
            self.note_decision(
                values.get("NBA_Last_Decision_Id__c"), values.get("NBA_Customer_Id__c"), values
            )
        elif values.get("NBA_Decision_Id__c"):
            self.task_versions.setdefault(str(values["NBA_Decision_Id__c"]), set()).add(version_of(values))
        self.counters["total_writes" if obj == "Contact" else "task_writes"] = (
            self.counters.get("total_writes" if obj == "Contact" else "task_writes", 0) + 1
        )
        return rid, created

    def _create(self, obj: str, req: Request) -> Response:
        if obj not in FIELDS:
            return Response(
                404, [{"errorCode": "NOT_FOUND", "message": f"sObject type '{obj}' is not supported."}]
            )
        rec = req.json() or {}
        if obj == "Task" and rec.get("WhoId") not in self.records["Contact"]:
            return Response(
                400, [_err("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["WhoId"])]
            )
        rid = self._new_id(obj)
        self.records[obj][rid] = {"Id": rid, **{k: v for k, v in rec.items() if k != "attributes"}}
        return Response(201, {"id": rid, "success": True, "errors": []})

    def _new_id(self, obj: str) -> str:
        self._seq += 1
        return f"{PREFIX[obj]}{self._seq:015d}"


@dataclass(frozen=True)
class OAuthApp:
    """A connected app: its consumer key and secret, the user it may act as, and the certificate
    (PEM file) whose public key verifies JWT bearer assertions. `clock_skew_s` moves this server's
    clock ahead (an assertion minted on a slow clock arrives expired)."""

    consumer_key: str
    username: str
    certificate: str | None = None
    consumer_secret: str | None = None
    clock_skew_s: float = 0.0

    def refusal(self, req: Request, *, audience: str) -> tuple[str, str] | None:
        """(error, description) of a refused token request; None when it is granted."""
        form = {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()}
        grant = form.get("grant_type")
        if grant == JWT_GRANT:
            return self._jwt(form.get("assertion", ""), audience)
        if grant == "client_credentials":
            basic = req.headers.get("authorization", "").removeprefix("Basic ")
            given = base64.b64decode(basic.encode() or b"Og==").decode("utf-8", "replace")
            key, _, secret = given.partition(":")
            if key != self.consumer_key:
                return "invalid_client_id", "client identifier invalid"
            if self.consumer_secret is None or secret != self.consumer_secret:
                return "invalid_client", "invalid client credentials"
            return None
        return "unsupported_grant_type", "grant type not supported"

    def _jwt(self, assertion: str, audience: str) -> tuple[str, str] | None:
        import jwt
        from cryptography import x509

        if self.certificate is None:
            return "invalid_grant", "no certificate uploaded for this connected app"
        public_key = x509.load_pem_x509_certificate(Path(self.certificate).read_bytes()).public_key()
        try:
            claims = jwt.decode(
                assertion, public_key, algorithms=["RS256"], audience=audience,  # type: ignore[arg-type]
                options={"require": ["iss", "sub", "aud", "exp"], "verify_exp": False},
            )  # fmt: skip
        except jwt.InvalidAudienceError:
            return "invalid_grant", "audience is invalid"
        except jwt.PyJWTError:
            return "invalid_grant", "invalid assertion"
        if claims["iss"] != self.consumer_key:
            return "invalid_client_id", "client identifier invalid"
        if claims["sub"] != self.username:
            return "invalid_grant", "user hasn't approved this consumer"
        if float(claims["exp"]) <= time.time() + self.clock_skew_s:
            return "invalid_grant", "expired assertion"
        return None


def jwt_key_pair(directory: Path) -> tuple[str, str]:
    """(private key PEM path, certificate PEM path): an RSA key and its self-signed certificate, as a
    connected app's owner makes them (openssl req -x509 -newkey rsa:2048)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nba-activate")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7)).sign(key, hashes.SHA256())
    )  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = directory / "jwt_key.pem", directory / "jwt_cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(key_path), str(cert_path)


def _err(code: str, message: str, fields: list[str] | None = None) -> dict[str, Any]:
    return {"statusCode": code, "message": message, "fields": fields or []}


def _self_signed(directory: Path) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return str(cert_path), str(key_path)
