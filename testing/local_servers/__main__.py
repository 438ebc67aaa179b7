"""`python -m testing.local_servers {hubspot|salesforce|webhook|all|chat|batch} [--port N] [knobs]`.

`all` starts the three servers on consecutive ports (default 8711, 8712, 8713) and prints the
NBA_* variables that point the connectors at them. The credentials are fixed local demo values,
not secrets; never reuse them for a real account. `chat` is the deterministic chat-completions test
double; `batch` is a local Batch API that runs each request line against `--upstream` (a chat URL;
default: a `chat` server it starts on the next port).
"""

from __future__ import annotations

import argparse
import time

from testing.local_servers import SERVERS, HubSpotServer, LocalServer, SalesforceServer, WebhookServer
from testing.local_servers.batch_api import BatchAPIServer
from testing.local_servers.chat import ChatServer


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m testing.local_servers", description=__doc__.splitlines()[0])
    p.add_argument("server", choices=[*SERVERS, "all", "chat", "batch"])
    p.add_argument("--port", type=int, default=8711, help="port (for `all`: the first of three)")
    p.add_argument("--error-rate", type=float, default=0.0)
    p.add_argument("--rate-429", type=float, default=0.0)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--partial-failure-rate", type=float, default=0.0)
    p.add_argument("--rate-limit", type=int, default=None, help="declared requests per window (hubspot: 100)")
    p.add_argument("--rate-window-s", type=float, default=None, help="declared window (hubspot: 10)")
    p.add_argument("--retry-after-s", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verbose", action="store_true", help="log every request")
    p.add_argument("--upstream", default=None, help="batch: the chat-completions base URL (.../v1)")
    p.add_argument("--expire-after", type=int, default=None, help="batch: answer N lines, then expire")
    p.add_argument("--error-every", type=int, default=0, help="batch: every K-th line answered 500")
    return p


def _llm_servers(args: argparse.Namespace) -> list[LocalServer]:
    quiet = not args.verbose
    if args.server == "chat":
        return [ChatServer(port=args.port, latency_ms=args.latency_ms, quiet=quiet).start()]
    servers: list[LocalServer] = []
    upstream = args.upstream
    if upstream is None:
        servers.append(ChatServer(port=args.port + 1, quiet=quiet).start())
        upstream = f"{servers[0].url}/v1"
    batch = BatchAPIServer(
        port=args.port,
        upstream=upstream,
        expire_after=args.expire_after,
        error_every=args.error_every,
        quiet=quiet,
    )
    print(f"OPENAI_BASE_URL={batch.url}/v1 OPENAI_API_KEY={batch.api_key}", flush=True)
    return [batch.start(), *servers]


def _env_lines(server: LocalServer) -> list[str]:
    if isinstance(server, HubSpotServer):
        return [f"NBA_HUBSPOT__BASE_URL={server.url}", f"NBA_HUBSPOT__TOKEN={server.token}"]
    if isinstance(server, SalesforceServer):
        return [
            f"NBA_SALESFORCE__INSTANCE_URL={server.url}",
            f"NBA_SALESFORCE__SESSION_ID={server.session_id}",
            f"NBA_SALESFORCE__CA_BUNDLE={server.cert_path}",
        ]
    if isinstance(server, WebhookServer):
        return [f"NBA_WEBHOOK__URL={server.url}/hooks/nba", f"NBA_WEBHOOK__SECRET={server.secret}"]
    return []


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    knobs = {
        "error_rate": args.error_rate,
        "rate_429": args.rate_429,
        "latency_ms": args.latency_ms,
        "partial_failure_rate": args.partial_failure_rate,
        "retry_after_s": args.retry_after_s,
        "seed": args.seed,
        "quiet": not args.verbose,
    }
    if args.rate_limit is not None:
        knobs["rate_limit"] = args.rate_limit
    if args.rate_window_s is not None:
        knobs["rate_window_s"] = args.rate_window_s
    if args.server in ("chat", "batch"):
        servers = _llm_servers(args)
        for server in servers:
            print(f"{server.name:<10} {server.url}", flush=True)
        return _wait(servers)
    names = list(SERVERS) if args.server == "all" else [args.server]
    servers = [SERVERS[name](port=args.port + i, **knobs).start() for i, name in enumerate(names)]
    lines = [f"NBA_DESTINATIONS={','.join(names)}"]
    for server in servers:
        print(f"{server.name:<10} {server.url}   (stats: GET {server.url}/_admin/stats)", flush=True)
        lines += _env_lines(server)
    print("\n# point the connectors at them:\n" + "\n".join(f"export {line}" for line in lines), flush=True)
    return _wait(servers)


def _wait(servers: list[LocalServer]) -> int:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        for server in servers:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
