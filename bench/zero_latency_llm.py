"""Benchmark-only OpenAI-compatible server that answers every chat completion at once.

It reads the forced tool (instructor's Mode.TOOLS sends `tool_choice` with the response model's
name) and answers with arguments built from that tool's JSON schema: the first allowed template (and its
channel, if the schema asks for one), a 5% discount and a short message. Keep-alive HTTP/1.1 on asyncio, no framework, so the
server costs as little as possible next to the client being measured. Never used by the product.

    python bench/zero_latency_llm.py --port 8099
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.reference import load_reference  # noqa: E402

TEMPLATE_CHANNEL = {t.template_id: t.channel for t in load_reference().templates.values()}


def _arguments(tool: dict) -> str:
    props = tool["function"]["parameters"]["properties"]
    defs = tool["function"]["parameters"].get("$defs", {})

    def first(name: str) -> str:
        p = props[name]
        if "$ref" in p:
            p = defs[p["$ref"].split("/")[-1]]
        return (p.get("enum") or [p.get("const")])[0]

    template = first("template_id")
    channel = TEMPLATE_CHANNEL[template]
    answer = {
        "template_id": template,
        "channel": channel,
        "discount_pct": 5,
        "subject": "A little something for you" if channel == "email" else None,
        "message": "We miss you! Enjoy 5% off your next order.",
        "rationale": "benchmark",
    }
    return json.dumps({k: v for k, v in answer.items() if k in props})  # what the schema asks for


def completion(body: bytes) -> bytes:
    req = json.loads(body)
    name = req["tool_choice"]["function"]["name"]
    tool = next(t for t in req["tools"] if t["function"]["name"] == name)
    resp = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req["model"],
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_0",
                            "type": "function",
                            "function": {"name": name, "arguments": _arguments(tool)},
                        }
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 400, "completion_tokens": 40, "total_tokens": 440},
    }
    return json.dumps(resp).encode()


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length) if length else b""
            path = head.split(b" ", 2)[1]
            payload = completion(body) if path.endswith(b"/chat/completions") else b'{"data": []}'
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                + str(len(payload)).encode()
                + b"\r\n\r\n"
                + payload
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionResetError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    print(f"zero-latency server on http://127.0.0.1:{port}/v1", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8099)
    asyncio.run(main(ap.parse_args().port))
