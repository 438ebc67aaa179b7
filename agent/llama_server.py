"""llama.cpp's own C++ server (`llama-server`), built once from the sources that the pinned
`llama-cpp-python` sdist vendors, and the embedded model's weights converted once to 16-bit floats:
BF16 on a CPU with AVX512-BF16, F16 elsewhere (`weight_type`).

Why this and not llama-cpp-python's server (bench/bench_llm_embedded.py, issue 17): llama-server runs
several slots with continuous batching and reuses each slot's cached prompt prefix, and ggml's batched
kernels read a 16-bit prompt several times faster than the shipped Q4_1. Nothing of llama-cpp-python
is installed: pip downloads its sdist (no compile), cmake builds three binaries from the vendored
llama.cpp (llama-server, llama-quantize, llama-batched-bench), and the binaries are kept under
`<venv>/llama.cpp/` keyed by the sdist version and this CPU's instruction set (GGML_NATIVE), so a
second use starts the server in about a second. Progress, with an estimate, is printed throughout.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from agent.errors import LocalModelError

LLAMA_CPP_PYTHON_VERSION = "0.3.36"  # the sdist whose vendored llama.cpp is built (bump deliberately)
# pip checks the download against this (hash-checking mode): a changed file on the registry is refused.
LLAMA_CPP_PYTHON_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
TARGETS = ("llama-server", "llama-quantize", "llama-batched-bench")
# A Release build of only what the three targets need, statically linked (the binaries move as files),
# tuned for this CPU, and with nothing that reaches a network: no curl/openssl, no prebuilt web UI.
CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DGGML_NATIVE=ON",
    "-DGGML_CCACHE=OFF",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
)
# Parts of the vendored tree that the three targets never read (113 of its 176 MB).
SKIP_DIRS = ("models", "docs", "examples", "benches", "tests", "media", "gguf-py", "tools/ui/src")
# The build's wall time on 2 cores on a fast and a slow machine (bench/README.md), for the first
# estimate only: the first line says the range, the progress starts from the slower and follows the
# rate once a tenth is compiled.
BUILD_ESTIMATE_S = (253.0, 560.0)  # on 2 cores; scaled by 2 / cores elsewhere
_STEP = re.compile(r"^\[\s*(\d+)/(\d+)\]")  # ninja: "[87/214] Building CXX object ..."
_PCT = re.compile(r"^\[\s*(\d+)%\]")  # make: "[ 45%] Building ..."


def say(msg: str) -> None:
    print(f"[local-llm] {msg}", file=sys.stderr, flush=True)


def home() -> Path:
    """Where the build and the converted weights live: inside the running venv (kept by `make clean`)."""
    return Path(sys.prefix) / "llama.cpp"


def cpu_flags() -> list[str]:
    """The CPU's instruction-set flags (/proc/cpuinfo), sorted; empty where there is no such file."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return sorted(line.split(":", 1)[1].split())
    return []


def cpu_tag() -> str:
    """GGML_NATIVE compiles for this CPU's instruction set: a binary is reused only on the same set."""
    flags = " ".join(cpu_flags())
    return hashlib.sha256(f"{sys.platform}|{os.uname().machine}|{flags}".encode()).hexdigest()[:10]


def build_dir() -> Path:
    return home() / f"b{LLAMA_CPP_PYTHON_VERSION}-{cpu_tag()}"


def binary(name: str) -> Path:
    return build_dir() / "bin" / name


def built() -> bool:
    return all(os.access(binary(t), os.X_OK) for t in TARGETS) and (build_dir() / "build.json").exists()


def _fmt(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


class BuildProgress:
    """One line every few seconds: steps done, elapsed, and the time left (first from the measured
    estimate, then from the rate so far)."""

    def __init__(
        self, label: str, estimate_s: float, every_s: float = 15.0, out: Callable[[str], None] = say
    ) -> None:
        self.label, self.estimate_s, self.every_s, self.out = label, estimate_s, every_s, out
        self.t0 = time.monotonic()
        self.last = -every_s
        self.done, self.total = 0, 0

    def feed(self, line: str) -> None:
        m = _STEP.match(line)
        if m:
            self.done, self.total = int(m.group(1)), int(m.group(2))
        else:
            p = _PCT.match(line)
            if not p:
                return
            self.done, self.total = int(p.group(1)), 100
        now = time.monotonic()
        if now - self.last >= self.every_s or self.done == self.total:
            self.last = now
            self.out(self.line(now - self.t0))

    def left_s(self, elapsed: float) -> float:
        frac = self.done / self.total if self.total else 0.0
        if frac < 0.1:  # too early for the rate: the measured estimate
            return max(self.estimate_s - elapsed, 0.0)
        return elapsed / frac - elapsed

    def line(self, elapsed: float) -> str:
        pct = 100 * self.done / self.total if self.total else 0
        return (
            f"{self.label}: {self.done}/{self.total} steps ({pct:.0f}%), {_fmt(elapsed)} elapsed, "
            f"about {_fmt(self.left_s(elapsed))} left"
        )


def _run(
    cmd: list[str], log: Path, *, cwd: Path | None = None, progress: BuildProgress | None = None
) -> None:
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            fh.write(line)
            if progress is not None:
                progress.feed(line)
        rc = proc.wait()
    if rc != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        for t in tail:
            say(f"  | {t[:200]}")
        raise LocalModelError(
            f"`{Path(cmd[0]).name} {cmd[1] if len(cmd) > 1 else ''}` failed (exit {rc}); full log: {log}. "
            "It needs cmake >= 3.14 and a C++17 compiler (apt-get install cmake g++ ninja-build); "
            "or set OPENAI_BASE_URL to another OpenAI-compatible server"
        )


def pip_download(spec: str, sha256: str, dest: Path, log: Path) -> Path:
    """One pinned file from the package registry through pip (its index and proxy settings), checked
    against its sha256; no dependencies, nothing installed. Returns the downloaded file."""
    req = dest / "requirements.txt"
    req.write_text(f"{spec} --hash=sha256:{sha256}\n")
    binary = [] if spec.startswith("llama-cpp-python") else ["--only-binary", ":all:"]
    no_binary = ["--no-binary", ":all:"] if not binary else []
    _run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", *no_binary, *binary,
         "-d", str(dest), "-r", str(req)],
        log,
    )  # fmt: skip
    name = spec.split("==")[0].replace("-", "_")
    found = [p for p in dest.iterdir() if p.name.lower().startswith(name.lower()) and p.name != req.name]
    if not found:
        raise LocalModelError(f"pip downloaded no file for {spec}; see {log}")
    return found[0]


def fetch_sources(dest: Path, log: Path) -> Path:
    """The llama.cpp tree vendored in the pinned llama-cpp-python sdist: pip downloads it (no build)."""
    with tempfile.TemporaryDirectory(prefix="sdist-", dir=dest) as tmp:
        spec = f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}"
        say(f"downloading the {spec} sdist (77 MB, for its vendored llama.cpp sources)")
        tarball = pip_download(spec, LLAMA_CPP_PYTHON_SHA256, Path(tmp), log)
        return extract_vendored(tarball, dest / "llama.cpp-src")


def extract_vendored(tarball: Path, src: Path) -> Path:
    """Only the sdist's vendor/llama.cpp/ tree, without SKIP_DIRS, as `src` (tarfile's data filter: no
    absolute paths, links out of the tree or device files)."""
    prefix = f"{tarball.name[: -len('.tar.gz')]}/vendor/llama.cpp/"
    shutil.rmtree(src, ignore_errors=True)
    with tarfile.open(tarball) as tar:
        members = []
        for m in tar.getmembers():
            if not m.name.startswith(prefix) or m.name == prefix:
                continue
            rel = m.name[len(prefix) :]
            if any(rel == d or rel.startswith(d + "/") for d in SKIP_DIRS):
                continue
            m.name = rel
            members.append(m)
        if not members:
            raise LocalModelError(
                f"{tarball.name} has no vendor/llama.cpp/ tree: not a llama-cpp-python sdist"
            )
        tar.extractall(src, members=members, filter="data")
    return src


def ensure_built(sources: Callable[[Path, Path], Path] = fetch_sources) -> Path:
    """Build llama-server and its two tools once (a file lock keeps concurrent first uses to one
    build); returns the bin/ folder. `sources(work_dir, log)` returns the llama.cpp tree to build."""
    if built():
        return binary(TARGETS[0]).parent
    home().mkdir(parents=True, exist_ok=True)
    with (home() / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if built():
            return binary(TARGETS[0]).parent
        for tool in ("cmake",):
            if shutil.which(tool) is None:
                raise LocalModelError(
                    "the embedded model server is built from source on first use and needs cmake and a "
                    "C++ compiler: apt-get install cmake g++ ninja-build (or set OPENAI_BASE_URL)"
                )
        jobs = os.cpu_count() or 1
        fast, estimate = (t * 2 / jobs for t in BUILD_ESTIMATE_S)
        say(
            f"first use: building llama.cpp's llama-server from the llama-cpp-python "
            f"{LLAMA_CPP_PYTHON_VERSION} sources, once; {_fmt(fast)} to {_fmt(estimate)} on {jobs} cores "
            f"(measured). Later runs start it in seconds."
        )
        t0 = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix="build-", dir=home()))
        log = home() / "build.log"  # kept after a failure; copied next to the binaries after a success
        log.write_text("")
        try:
            src = sources(work, log)
            gen = ["-G", "Ninja"] if shutil.which("ninja") else []
            say(f"configuring with cmake ({'ninja' if gen else 'make'}); log: {log}")
            _run(["cmake", "-S", str(src), "-B", str(work / "build"), *gen, *CMAKE_FLAGS], log)
            progress = BuildProgress("compiling llama-server", estimate)
            _run(
                ["cmake", "--build", str(work / "build"), "-j", str(jobs), "--target", *TARGETS],
                log,
                progress=progress,
            )
            out = work / "out"
            (out / "bin").mkdir(parents=True)
            for t in TARGETS:
                shutil.copy2(work / "build" / "bin" / t, out / "bin" / t)
            info = {
                "llama_cpp_python": LLAMA_CPP_PYTHON_VERSION,
                "cmake_flags": list(CMAKE_FLAGS),
                "jobs": jobs,
                "seconds": round(time.monotonic() - t0, 1),
            }
            (out / "build.json").write_text(json.dumps(info, indent=2) + "\n")
            shutil.move(str(log), out / "build.log")
            shutil.rmtree(build_dir(), ignore_errors=True)
            os.replace(out, build_dir())  # whole or not at all
        finally:
            shutil.rmtree(work, ignore_errors=True)
        say(f"built llama-server in {_fmt(time.monotonic() - t0)}: {build_dir() / 'bin'}")
    return binary(TARGETS[0]).parent


def weight_type(flags: list[str] | None = None) -> str:
    """The 16-bit type ggml computes fastest from on this CPU: BF16 where the CPU has AVX512-BF16,
    F16 elsewhere. llamafile's tinyBLAS has an AVX2+F16C kernel for F16 but multiplies BF16 fast
    only with AVX512-BF16, so without it F16 is the faster of the two (bench/README.md)."""
    return "BF16" if "avx512_bf16" in (cpu_flags() if flags is None else flags) else "F16"


def converted(source: Path, flags: list[str] | None = None) -> Path:
    """The source GGUF requantized once to `weight_type` (`llama-quantize --allow-requantize`), cached
    by the source's size and mtime and named by the type. ggml's batched kernels read a 16-bit prompt
    several times faster than Q4_1, and dequantizing the shipped Q4_1 loses nothing measurable."""
    kind = weight_type(flags)
    st = source.stat()
    tag = hashlib.sha256(f"{source.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:10]
    stem = source.name.removesuffix(".gguf").replace(".Q4_1", "")
    target = home() / "models" / f"{stem}.{kind}.{tag}.gguf"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    quantize = ensure_built() / "llama-quantize"
    say(f"converting {source.name} to {kind} once ({st.st_size / 1e6:.0f} MB, a few seconds)")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        part = Path(tmp) / target.name
        log = Path(tmp) / "quantize.log"
        nthreads = str(os.cpu_count() or 1)
        _run([str(quantize), "--allow-requantize", str(source), str(part), kind, nthreads], log)
        os.replace(part, target)
    say(f"converted in {time.monotonic() - t0:.1f}s: {target}")
    return target


def server_command(
    model: Path,
    port: int,
    *,
    alias: str,
    slots: int,
    ctx_per_slot: int = 4096,
    threads: int | None = None,
    flags: list[str] | None = None,
) -> list[str]:
    """llama-server on 127.0.0.1 with `slots` parallel sequences sharing one KV cache.

    --repeat-penalty 1.1: llama-cpp-python's server applies it by default and SmolLM2 needs it (without,
    it loops to max_tokens and falls back); --cache-reuse (F16 keys only) lets a slot
    reuse cached chunks of its previous prompt; the prompt prefix is reused per slot anyway
    (cache_prompt), and our prompts put what customers share first.
    --no-kv-unified and, on a CPU with AMX, a BF16 KV cache (`kv_args`): attention is a large share
    of the server's CPU time, and each slot attending to its own cells, in BF16, generates faster
    there (bench/README.md).
    --no-repack on a CPU with AMX (`amx_tile`, `flags` default: this CPU's): ggml repacks quantized
    weights (Q4_1, Q8_0, ...) into its AMX buffer there, and the server has crashed (SIGSEGV) while
    loading them; without repacking Q4_1 runs and BF16, which is never repacked, is unchanged."""
    threads = threads or os.cpu_count() or 1
    flags = cpu_flags() if flags is None else flags  # read once: repack_args and kv_args decide on it
    kv = kv_args(flags)
    return [
        str(ensure_built() / "llama-server"),
        "--model",
        str(model),
        "--alias",
        alias,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--ctx-size",
        str(slots * ctx_per_slot),
        "--parallel",
        str(slots),
        "--no-kv-unified",
        "--threads",
        str(threads),
        "--threads-batch",
        str(threads),
        "--repeat-penalty",
        "1.1",
        "--no-webui",
        *repack_args(flags),
        *kv,
        # shifting cached keys applies RoPE to them, which ggml's CPU backend cannot do on BF16 (the
        # server aborted in ggml_compute_forward_rope on a reask): no chunk reuse, no context shift
        *(["--no-context-shift"] if kv else ["--cache-reuse", "256"]),
    ]


def kv_args(flags: list[str] | None = None) -> list[str]:
    """The KV cache in BF16 on a CPU with AMX (`amx_bf16`), for every llama.cpp tool we run (see
    server_command); F16, llama.cpp's default, elsewhere. BF16 keys were faster on a CPU with AMX
    and slower on one with AVX512-BF16 but no AMX (bench/README.md), and F16 keys keep --cache-reuse
    and context shift."""
    bf16 = "amx_bf16" in (cpu_flags() if flags is None else flags)
    return ["--cache-type-k", "bf16", "--cache-type-v", "bf16"] if bf16 else []


def repack_args(flags: list[str] | None = None) -> list[str]:
    """`--no-repack` on a CPU with AMX (see server_command), for every llama.cpp tool we run."""
    return ["--no-repack"] if "amx_tile" in (cpu_flags() if flags is None else flags) else []
