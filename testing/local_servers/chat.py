"""A deterministic chat-completions server for tests without a model: `POST /v1/chat/completions`.

It answers every request with the smallest JSON object valid for the schema the request carries
(instructor's forced tool in TOOLS mode, or `response_format` json_schema): an enum's first value, a
number's minimum, a string of the smallest allowed length, every property filled. The same body always
gets the same answer (its id is a hash of the body), so runs can be compared line for line. It keeps a
log of the bodies it received (`bodies`, and `received`: sha256 of each one's canonical JSON, in order),
logged before the configured latency, so a killed client's in-flight requests count as asked.
A test double: never part of the product path.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from testing.local_servers.common import LocalServer, Request, Response

CHAT_PATH = "/v1/chat/completions"


def body_hash(body: dict[str, Any]) -> str:
    """The id of a request body: sha256 of its canonical JSON."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def minimal_instance(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """The smallest value valid for a JSON schema (the subset pydantic writes)."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return minimal_instance(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"] or schema[key]
            return minimal_instance(options[0], defs)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: minimal_instance(sub, defs) for name, sub in props.items()}
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema["exclusiveMinimum"] + 1 if "exclusiveMinimum" in schema else 0)
        return min(low, schema["maximum"]) if "maximum" in schema else low
    if kind == "string":
        text = "ok" + "k" * max(0, schema.get("minLength", 0) - 2)
        return text[: schema.get("maxLength", len(text))]
    if kind == "array":
        return [minimal_instance(schema.get("items", {}), defs) for _ in range(schema.get("minItems", 0))]
    return False if kind == "boolean" else None


def answer(body: dict[str, Any]) -> dict[str, Any]:
    """The chat completion for one request body: a tool call for a forced tool, else JSON content."""
    message: dict[str, Any] = {"role": "assistant", "content": None}
    finish = "stop"
    choice = (body.get("tool_choice") or {}).get("function", {}).get("name")
    tool = next((t for t in body.get("tools") or [] if t["function"]["name"] == choice), None)
    fmt = body.get("response_format") or {}
    if tool is not None:
        args = json.dumps(minimal_instance(tool["function"].get("parameters", {})))
        message["tool_calls"] = [
            {"id": "call_0", "type": "function", "function": {"name": choice, "arguments": args}}
        ]
        finish, text = "tool_calls", args
    elif fmt.get("type") == "json_schema":
        text = message["content"] = json.dumps(minimal_instance(fmt["json_schema"].get("schema", {})))
    else:
        text = message["content"] = "{}"
    prompt = sum(len(str(m.get("content") or "")) for m in body.get("messages", []))
    return {
        "id": f"chatcmpl-{body_hash(body)[:24]}",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "local"),
        "choices": [{"index": 0, "finish_reason": finish, "message": message}],
        "usage": {
            "prompt_tokens": prompt // 4,
            "completion_tokens": len(text) // 4,
            "total_tokens": prompt // 4 + len(text) // 4,
        },
    }


class ChatServer(LocalServer):
    """`work_ms`: each answer needs this much of the server's time, shared with every request in
    flight (processor sharing, as a CPU-bound model server behaves): n requests at once each take n
    times as long, and a request its client gave up on keeps its share until it is done. With
    `shared=False` each answer takes `work_ms` however many are in flight, as a server that batches
    its slots (llama-server) does on a machine that other work keeps busy."""

    name = "chat"

    def __init__(self, *, work_ms: float = 0.0, shared: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shared = shared
        self.received: list[str] = []  # body hashes, in arrival order
        self.bodies: list[dict[str, Any]] = []  # the bodies themselves
        self.work_ms = work_ms
        self.busy = 0
        self.peak_busy = 0

    def _work(self) -> None:
        with self.lock:
            self.busy += 1
            self.peak_busy = max(self.peak_busy, self.busy)
        done, last = 0.0, time.monotonic()
        try:
            while done < self.work_ms / 1000:
                time.sleep(0.002)
                now = time.monotonic()
                with self.lock:
                    sharing = self.busy if self.shared else 1
                done, last = done + (now - last) / sharing, now
        finally:
            with self.lock:
                self.busy -= 1

    def dispatch(self, req: Request) -> Response:
        if req.path.startswith("/_admin/"):
            return super().dispatch(req)
        if req.method != "POST" or req.path.rstrip("/") != CHAT_PATH:
            return Response(404, {"error": {"message": f"no route {req.method} {req.path}"}})
        try:
            body = req.json()
            assert isinstance(body, dict) and isinstance(body.get("messages"), list)
        except Exception:
            return Response(400, {"error": {"message": "body must be a chat completion request"}})
        with self.lock:
            self.counters["requests"] += 1
            self.received.append(body_hash(body))
            self.bodies.append(body)
        if self.knobs.latency_ms:  # after the log: an answer lost to a killed client was still asked
            time.sleep(self.knobs.latency_ms / 1000)
        if self.work_ms:
            self._work()
        return Response(200, answer(body))

    def extra_stats(self) -> dict[str, Any]:
        return {"distinct_bodies": len(set(self.received))}
