"""What every local destination server shares: a threaded HTTP(S) server on 127.0.0.1, knobs for
failure injection (deterministic with a seed), a declared sliding-window rate limit, and counters of
what the server REALLY stored, readable in-process (`server.stats()`) or over HTTP (`GET /_admin/stats`):
besides the vendor's own counts, `stored_decisions` (decision ids ever stored), `changed_decisions`
(decision ids stored with more than one payload: a second, different action under one id) and
`customers_with_several_decisions` (customers who were sent more than one decision).

Request pipeline: admin routes -> latency -> declared rate limit (429) -> injected 429 -> auth ->
injected 5xx (half before the write, half after it: the response is lost but the write happened,
which is how duplicates are born) -> the API route.
"""

from __future__ import annotations

import hashlib
import json
import random
import ssl
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Knobs:
    error_rate: float = 0.0  # share of requests answered 500/503
    rate_429: float = 0.0  # share of requests answered 429 at random (besides the declared limit)
    latency_ms: float = 0.0
    partial_failure_rate: float = 0.0  # share of rows failing transiently inside a 207/collection result
    rate_limit: int | None = None  # declared: at most this many requests ...
    rate_window_s: float = 10.0  # ... in any window of this many seconds
    retry_after_s: float = 1.0  # Retry-After sent with injected 429s
    daily_limit: int = 1_000_000
    seed: int = 0

    def update(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            if not hasattr(self, key):
                raise KeyError(key)
            setattr(self, key, value)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return b"" if self.body is None else json.dumps(self.body).encode()


class SlidingWindow:
    """At most `limit` events in any `window_s`; remembers the peak it ever allowed in a window."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit, self.window_s = limit, window_s
        self.events: deque[float] = deque()
        self.peak = 0

    def _trim(self, now: float) -> None:
        while self.events and self.events[0] <= now - self.window_s:
            self.events.popleft()

    def hit(self, now: float) -> float | None:
        """Count an event; None if allowed, else seconds until a slot frees."""
        self._trim(now)
        if len(self.events) >= self.limit:
            return self.events[0] + self.window_s - now
        self.events.append(now)
        self.peak = max(self.peak, len(self.events))
        return None

    def remaining(self, now: float) -> int:
        self._trim(now)
        return max(0, self.limit - len(self.events))


class LocalServer:
    """Base class: subclasses implement `route`, `authorised`, and the vendor's error shapes."""

    name = "server"
    tls = False

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, quiet: bool = True, **knobs: Any) -> None:
        self.host, self.port, self.quiet = host, port, quiet
        self.knobs = Knobs(**knobs)
        self.lock = threading.RLock()
        self.rng = random.Random(self.knobs.seed)
        self.counters: dict[str, int] = {
            "requests": 0,
            "declared_limit_429": 0,
            "injected_429": 0,
            "injected_errors": 0,
            "total_writes": 0,
            "api_requests": 0,
        }
        self._window: SlidingWindow | None = None
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.cert_path: str | None = None
        self.first_api_at: float | None = None  # monotonic time of the first/last authorised request
        self.last_api_at: float | None = None
        # What each decision looked like every time it was stored, and which decisions each customer
        # got: exactly-once means one version per decision and one decision per customer per run.
        self.decision_versions: dict[str, set[str]] = {}
        self.customer_decisions: dict[str, set[str]] = {}

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self) -> LocalServer:
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        if self.tls:
            self._httpd.socket = self.ssl_context().wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        self.start()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            self.stop()

    def ssl_context(self) -> ssl.SSLContext:  # pragma: no cover - TLS servers override
        raise NotImplementedError

    # --- to override -----------------------------------------------------------------------------

    def authorised(self, req: Request) -> bool:
        return True

    def route(self, req: Request) -> Response:
        return Response(404, {"error": "not found"})

    def unauthorised(self) -> Response:
        return Response(401, {"error": "unauthorised"})

    def too_many(self, retry_after: float, declared: bool) -> Response:
        return Response(
            429, {"error": "rate limited"}, {"Retry-After": _retry_after(retry_after, exact=not declared)}
        )

    def server_error(self, status: int) -> Response:
        return Response(status, {"error": "injected server error"})

    def decorate(self, resp: Response, now: float) -> None:
        """Add the vendor's usage headers to every API response."""

    def unique_records(self) -> int:
        return 0

    def extra_stats(self) -> dict[str, Any]:
        return {}

    def note_decision(self, decision_id: str | None, customer_id: str | None, stored: Any) -> None:
        """Record one stored write of a decision (call with the lock held, from `route`)."""
        if not decision_id:
            return
        self.decision_versions.setdefault(decision_id, set()).add(version_of(stored))
        if customer_id:
            self.customer_decisions.setdefault(customer_id, set()).add(decision_id)

    # --- shared pipeline -------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        with self.lock:
            peak = self._window.peak if self._window else None
            return {
                **self.counters,
                "unique_records": self.unique_records(),
                "peak_in_window": peak,
                "first_api_at": self.first_api_at,
                "last_api_at": self.last_api_at,
                "knobs": asdict(self.knobs),
                "stored_decisions": len(self.decision_versions),
                "changed_decisions": sum(len(v) > 1 for v in self.decision_versions.values()),
                "customers_with_several_decisions": sum(len(v) > 1 for v in self.customer_decisions.values()),
                **self.extra_stats(),
            }

    def window(self) -> SlidingWindow | None:
        k = self.knobs
        if k.rate_limit is None:
            return None
        if self._window is None or (self._window.limit, self._window.window_s) != (
            k.rate_limit,
            k.rate_window_s,
        ):
            self._window = SlidingWindow(k.rate_limit, k.rate_window_s)
        return self._window

    def dispatch(self, req: Request) -> Response:
        if req.path.startswith("/_admin/"):
            return self._admin(req)
        if self.knobs.latency_ms:
            time.sleep(self.knobs.latency_ms / 1000)
        with self.lock:
            now = time.monotonic()
            self.counters["requests"] += 1
            resp = self._pipeline(req, now)
            self.decorate(resp, now)
            return resp

    def _pipeline(self, req: Request, now: float) -> Response:
        k = self.knobs
        win = self.window()
        if win is not None:
            wait = win.hit(now)
            if wait is not None:
                self.counters["declared_limit_429"] += 1
                return self.too_many(wait, declared=True)
        if k.rate_429 and self.rng.random() < k.rate_429:
            self.counters["injected_429"] += 1
            return self.too_many(k.retry_after_s, declared=False)
        if not self.authorised(req):
            return self.unauthorised()
        self.counters["api_requests"] += 1
        self.first_api_at = self.first_api_at or now
        self.last_api_at = now
        if k.error_rate and self.rng.random() < k.error_rate:
            self.counters["injected_errors"] += 1
            status = self.rng.choice([500, 503])
            if self.rng.random() < 0.5:
                return self.server_error(status)
            self.route(req)  # the write happens; the answer is lost
            return self.server_error(status)
        return self.route(req)

    def _admin(self, req: Request) -> Response:
        if req.method == "GET" and req.path == "/_admin/stats":
            return Response(200, self.stats())
        if req.method == "POST" and req.path == "/_admin/knobs":
            with self.lock:
                try:
                    self.knobs.update(req.json() or {})
                except KeyError as exc:
                    return Response(400, {"error": f"unknown knob {exc}"})
            return Response(200, asdict(self.knobs))
        return Response(404, {"error": "unknown admin route"})


def version_of(stored: Any) -> str:
    """A hash of what was stored, to tell a re-sent decision from a changed one."""
    return hashlib.sha256(json.dumps(stored, sort_keys=True, default=str).encode()).hexdigest()


def _retry_after(seconds: float, exact: bool = False) -> str:
    """HTTP Retry-After is whole seconds; never round a wait down to zero. `exact` keeps a configured
    sub-second value (a test knob, so suites stay fast; clients parse it as a float)."""
    if exact and seconds < 1:
        return f"{seconds:g}"
    return str(max(1, int(seconds + 0.999)))


class _Handler(BaseHTTPRequestHandler):
    owner: LocalServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms delayed-ACK stalls

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        req = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            resp = self.owner.dispatch(req)
        except Exception as exc:  # a bug in a local server answers 500, never hangs the client
            resp = Response(500, {"error": f"local server bug: {type(exc).__name__}: {exc}"})
        data = resp.encode()
        self.send_response(resp.status)
        headers = {"Content-Type": "application/json;charset=UTF-8", **resp.headers}
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        if not self.owner.quiet:
            super().log_message(format, *args)
