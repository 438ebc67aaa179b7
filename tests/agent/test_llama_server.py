"""First use of the embedded model server, offline: the build orchestration runs real cmake on a small
C project that stands in for llama.cpp's tree (the three targets the product needs), and the sdist
extraction runs on a tarball laid out like llama-cpp-python's. The real build of llama.cpp runs in
`make test-live` (and CI), where it is timed."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from agent import llama_server
from agent.errors import LocalModelError

pytestmark = pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake")

CMAKE = """cmake_minimum_required(VERSION 3.14)
project(fake_llama C)
set(CMAKE_RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
foreach(t llama-server llama-quantize llama-batched-bench)
  add_executable(${t} main.c)
  target_compile_definitions(${t} PRIVATE NAME="${t}")
endforeach()
"""


def fake_tree(body: str = "int main(void) { puts(NAME); return 0; }"):
    def sources(work: Path, log: Path) -> Path:
        src = work / "llama.cpp-src"
        src.mkdir()
        (src / "CMakeLists.txt").write_text(CMAKE)
        (src / "main.c").write_text(f"#include <stdio.h>\n{body}\n")
        return src

    return sources


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "llama-home"
    monkeypatch.setattr(llama_server, "home", lambda: root)
    return root


def test_first_use_builds_the_three_binaries_once_with_progress(home, capsys) -> None:
    assert not llama_server.built()
    bin_dir = llama_server.ensure_built(sources=fake_tree())
    for t in llama_server.TARGETS:
        out = subprocess.run([str(bin_dir / t)], capture_output=True, text=True, check=True).stdout
        assert out.strip() == t
    err = capsys.readouterr().err
    assert "first use: building llama.cpp's llama-server" in err and "about" in err
    assert "compiling llama-server: " in err and " steps (100%)" in err and "left" in err
    info = json.loads((llama_server.build_dir() / "build.json").read_text())
    assert info["llama_cpp_python"] == llama_server.LLAMA_CPP_PYTHON_VERSION
    assert "-DLLAMA_USE_PREBUILT_UI=OFF" in info["cmake_flags"]  # no download during the build
    assert (llama_server.build_dir() / "build.log").exists()
    assert [p.name for p in home.iterdir() if p.name.startswith("build-")] == []  # work dir removed

    def never(work: Path, log: Path) -> Path:
        raise AssertionError("a second use must not build again")

    assert llama_server.ensure_built(sources=never) == bin_dir
    assert llama_server.built()


def test_a_failed_build_keeps_its_log_and_installs_nothing(home, capsys) -> None:
    with pytest.raises(LocalModelError, match=r"failed \(exit \d+\); full log: .*build\.log"):
        llama_server.ensure_built(sources=fake_tree("int main(void) { this is not C }"))
    assert not llama_server.build_dir().exists()
    assert "error" in (home / "build.log").read_text()
    assert "  | " in capsys.readouterr().err  # the log's tail is shown
    assert [p.name for p in home.iterdir() if p.name.startswith("build-")] == []


def test_the_binary_is_keyed_by_this_cpu_and_the_sdist_version(home) -> None:
    name = llama_server.build_dir().name
    assert name.startswith(f"b{llama_server.LLAMA_CPP_PYTHON_VERSION}-")
    assert name.endswith(llama_server.cpu_tag()) and len(llama_server.cpu_tag()) == 10


def _sdist(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_extract_takes_only_the_vendored_tree_without_the_parts_never_built(tmp_path) -> None:
    root = "llama_cpp_python-9.9.9"
    tarball = _sdist(
        tmp_path / f"{root}.tar.gz",
        {
            f"{root}/llama_cpp/__init__.py": b"",
            f"{root}/vendor/llama.cpp/CMakeLists.txt": b"cmake",
            f"{root}/vendor/llama.cpp/tools/server/server.cpp": b"int x;",
            f"{root}/vendor/llama.cpp/models/ggml-vocab.gguf": b"big",
            f"{root}/vendor/llama.cpp/docs/build.md": b"doc",
        },
    )
    src = llama_server.extract_vendored(tarball, tmp_path / "src")
    files = sorted(str(p.relative_to(src)) for p in src.rglob("*") if p.is_file())
    assert files == ["CMakeLists.txt", "tools/server/server.cpp"]


def test_extract_refuses_a_path_out_of_the_tree_and_a_tarball_without_sources(tmp_path) -> None:
    root = "llama_cpp_python-9.9.9"
    hostile = _sdist(
        tmp_path / f"{root}.tar.gz",
        {f"{root}/vendor/llama.cpp/CMakeLists.txt": b"x", f"{root}/vendor/llama.cpp/../../../evil": b"x"},
    )
    with pytest.raises(tarfile.OutsideDestinationError):
        llama_server.extract_vendored(hostile, tmp_path / "a" / "b" / "src")
    assert not (tmp_path / "evil").exists() and not (tmp_path / "a" / "evil").exists()
    empty = _sdist(tmp_path / "other-1.0.tar.gz", {"other-1.0/setup.py": b""})
    with pytest.raises(LocalModelError, match="no vendor/llama.cpp/ tree"):
        llama_server.extract_vendored(empty, tmp_path / "src2")


def test_progress_starts_from_the_measured_estimate_then_follows_the_rate() -> None:
    lines: list[str] = []
    p = llama_server.BuildProgress("compiling", estimate_s=560, every_s=0, out=lines.append)
    p.t0 -= 30
    p.feed("[5/200] Building CXX object src/llama.cpp.o")
    assert "5/200 steps" in lines[-1] and "about 8m" in lines[-1]  # 560 s - 30 s elapsed
    assert p.left_s(100.0) == pytest.approx(460.0)
    p.feed("[100/200] Building CXX object common/arg.cpp.o")
    assert p.left_s(100.0) == pytest.approx(100.0)  # half done in 100 s: 100 s left
    p.feed("[ 50%] Building C object (make's own progress)")
    assert p.done == 50 and p.total == 100
    p.feed("-- not a progress line")
    assert len(lines) == 3


def test_server_command_serves_slots_on_loopback_with_the_repeat_penalty(home, monkeypatch) -> None:
    monkeypatch.setattr(llama_server, "ensure_built", lambda: home / "bin")
    cmd = llama_server.server_command(Path("/m.gguf"), 8123, alias="smol", slots=3)
    assert cmd[0] == str(home / "bin" / "llama-server")
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and cmd[cmd.index("--port") + 1] == "8123"
    assert cmd[cmd.index("--parallel") + 1] == "3" and cmd[cmd.index("--ctx-size") + 1] == str(3 * 4096)
    assert cmd[cmd.index("--repeat-penalty") + 1] == "1.1"  # SmolLM2 loops to max_tokens without it
    assert "--no-kv-unified" in cmd and "--no-webui" in cmd  # each slot attends to its own cells
    assert cmd[cmd.index("--threads") + 1] == str(os.cpu_count() or 1)


def test_quantized_weights_are_not_repacked_on_an_amx_cpu(home, monkeypatch) -> None:
    # llama-server dies with SIGSEGV loading a Q4_1 or Q8_0 GGUF into ggml's AMX buffer on the Xeon
    # here (exit -11 before it listens); --no-repack serves it
    monkeypatch.setattr(llama_server, "ensure_built", lambda: home / "bin")
    amx = llama_server.server_command(Path("/m.gguf"), 1, alias="s", slots=1, flags=["avx512f", "amx_tile"])
    amd = llama_server.server_command(Path("/m.gguf"), 1, alias="s", slots=1, flags=["avx512f", "avx2"])
    assert "--no-repack" in amx and "--no-repack" not in amd


def test_kv_cache_is_bf16_only_where_it_measured_faster(home, monkeypatch) -> None:
    # faster on the Xeon with AMX; slower on an EPYC Zen 4 with AVX512-BF16 but no AMX
    monkeypatch.setattr(llama_server, "ensure_built", lambda: home / "bin")
    bf16 = llama_server.server_command(
        Path("/m.gguf"), 1, alias="s", slots=1, flags=["avx512f", "avx512_bf16", "amx_bf16", "amx_tile"]
    )
    plain = llama_server.server_command(Path("/m.gguf"), 1, alias="s", slots=1, flags=["avx2"])
    zen4 = llama_server.server_command(
        Path("/m.gguf"), 1, alias="s", slots=1, flags=["avx512f", "avx512_bf16"]
    )
    assert zen4 == plain  # BF16 weights there (weight_type), but the F16 KV cache
    assert (
        bf16[bf16.index("--cache-type-k") + 1] == "bf16" and bf16[bf16.index("--cache-type-v") + 1] == "bf16"
    )
    assert "--cache-type-k" not in plain and "--cache-type-v" not in plain  # llama.cpp's F16 default
    # RoPE cannot shift BF16 keys on the CPU (the server aborted on a reask): no chunk reuse there
    assert "--cache-reuse" not in bf16 and "--no-context-shift" in bf16
    assert plain[plain.index("--cache-reuse") + 1] == "256"


def test_weights_are_converted_to_the_16_bit_type_this_cpu_computes_fastest(
    tmp_path, home, monkeypatch
) -> None:
    # tinyBLAS multiplies BF16 fast only with AVX512-BF16; on an AVX2-only CPU F16 is the fast one
    # (llama-batched-bench, Zen 3: F16 0.80-0.96 vs BF16 0.72-0.75 decisions/s)
    assert llama_server.weight_type(["avx2", "avx512f", "avx512_bf16"]) == "BF16"
    assert llama_server.weight_type(["avx2", "f16c", "fma"]) == "F16"
    source = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    source.write_bytes(b"GGUF\x03\x00\x00\x00")
    # a llama-quantize that copies its input and records the type it was asked for, run for real
    bin_dir = home / "bin"
    bin_dir.mkdir(parents=True)
    types = tmp_path / "types.txt"
    script = bin_dir / "llama-quantize"
    script.write_text(f'#!/bin/sh\ncp "$2" "$3" && echo "$4" >> {types}\n')
    script.chmod(0o755)
    monkeypatch.setattr(llama_server, "ensure_built", lambda: bin_dir)
    f16 = llama_server.converted(source, ["avx2"])
    bf16 = llama_server.converted(source, ["avx512_bf16"])
    assert types.read_text().split() == ["F16", "BF16"]
    assert f16.name.startswith("SmolLM2-135M-Instruct.F16.") and bf16.name.startswith(
        "SmolLM2-135M-Instruct.BF16."
    )
    assert f16.exists() and bf16.exists() and f16 != bf16
    assert llama_server.converted(source, ["avx2"]) == f16  # once per type: not converted again
    assert types.read_text().split() == ["F16", "BF16"]


def test_model_path_is_served_as_it_is_without_download_or_conversion(tmp_path, home, monkeypatch) -> None:
    from agent import local_llm
    from core.config import LLMSettings

    mine = tmp_path / "mine.Q8_0.gguf"
    mine.write_bytes(b"GGUF\x03\x00\x00\x00")

    def no(*a: object, **k: object) -> Path:
        raise AssertionError("a user's GGUF is neither downloaded nor converted")

    monkeypatch.setattr(llama_server, "converted", no)
    monkeypatch.setattr(local_llm, "shipped_gguf", no)
    monkeypatch.setattr(llama_server, "ensure_built", lambda: home / "bin")
    settings = LLMSettings(model_path=mine, slots=2)
    cmd = local_llm.server_command(9000, settings)
    assert cmd[cmd.index("--model") + 1] == str(mine) and cmd[cmd.index("--parallel") + 1] == "2"


def test_the_model_wheel_member_is_checked_against_its_record(tmp_path) -> None:
    import base64
    import hashlib
    import zipfile

    from agent import local_llm

    data = b"GGUF" + b"\0" * 64
    good = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    for record_hash, ok in ((good, True), ("sha256=AAAA", False)):
        wheel = tmp_path / "w.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr("pkg/model.gguf", data)
            zf.writestr("pkg-1.dist-info/RECORD", f"pkg/model.gguf,{record_hash},{len(data)}\n")
        target = tmp_path / "out" / "model.gguf"
        if ok:
            assert local_llm.gguf_from_wheel(wheel, "pkg/model.gguf", target).read_bytes() == data
        else:
            target.unlink()
            with pytest.raises(LocalModelError, match="does not match its RECORD hash"):
                local_llm.gguf_from_wheel(wheel, "pkg/model.gguf", target)
            assert not target.exists() and list(target.parent.iterdir()) == []  # nothing half-written


def test_a_busy_machine_gets_one_server_thread_and_a_quiet_one_every_core() -> None:
    from agent import local_llm
    from core.config import LLMSettings

    auto = LLMSettings()
    assert auto.threads is None
    assert local_llm.threads_for(auto, 2, 0.1) == (2, "every core")
    threads, why = local_llm.threads_for(auto, 2, 1.9)  # two CPU-bound processes beside the run
    assert threads == 1 and "busy: 1.9 of 2 cores" in why
    assert local_llm.threads_for(auto, 2, None)[0] == 2  # no measure: as before
    assert local_llm.threads_for(auto, 1, 0.9)[0] == 1
    assert local_llm.threads_for(LLMSettings(threads=2), 2, 1.9) == (2, "NBA_LLM__THREADS")  # set wins


def test_busy_cores_reads_the_share_of_non_idle_time(tmp_path, monkeypatch) -> None:
    from agent import local_llm

    stat = tmp_path / "stat"
    samples = iter(["cpu  100 0 100 800 0 0 0 0 0 0\n", "cpu  250 0 150 900 0 0 0 0 0 0\n"])

    def read_text(self: Path) -> str:
        return next(samples)

    monkeypatch.setattr(Path, "read_text", read_text)
    monkeypatch.setattr(local_llm.os, "cpu_count", lambda: 2)
    # 300 jiffies passed, 100 of them idle: 2/3 of two cores busy
    assert local_llm.busy_cores(0, stat) == pytest.approx(4 / 3)
    monkeypatch.undo()
    assert local_llm.busy_cores(0, tmp_path / "missing") is None
