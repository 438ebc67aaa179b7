"""The package works outside the clone: the built wheel carries every file the code reads at run
time, installs into a fresh venv, and there, in an empty folder with no clone in reach, `nba --version`
answers, `nba warehouse build` builds a small demo warehouse from the dbt project inside the installed
package, and a rules-mode `nba plan` decides against it, writing only under that folder.

The fresh venv gets the wheel with `--no-deps`; its dependencies come from this suite's own venv
through a path line in a .pth file. A path line adds that site-packages to sys.path without running
its .pth files, so the clone's editable-install hook never loads: the only product code importable
there is the wheel's (asserted below). That keeps the test offline and within a minute; whether the
dependencies resolve from the package index is what `make install` with requirements.lock checks
(and test_lock_pins_every_dependency_within_its_floor below keeps the lock and the floors together).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DBT = ROOT / "warehouse" / "dbt"
SKIPPED_DIRS = {ROOT / "warehouse" / "data", ROOT / "warehouse" / "models", DBT / "target", DBT / "logs"}


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _ignore(folder: str, names: list[str]) -> set[str]:
    """Leave out what a working clone generates (bytecode, data, warehouse files): big, and no
    package file. Anything else a dirty clone holds is copied, so a too-wide package-data glob shows."""
    here = Path(folder)
    return {
        n
        for n in names
        if n == "__pycache__" or here / n in SKIPPED_DIRS or ".duckdb" in n or n.endswith("-build")
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the sources (a build writes build/ and *.egg-info where it
    runs) with this venv's setuptools (no build isolation: no download)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    for pattern in _project()["tool"]["setuptools"]["packages"]["find"]["include"]:
        top = pattern.rstrip("*")
        shutil.copytree(ROOT / top, src / top, ignore=_ignore)
    out = tmp_path_factory.mktemp("dist")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        str(out),
        ".",
    ]
    subprocess.run(cmd, cwd=src, check=True, capture_output=True, text=True)
    (built,) = out.glob("activate_nba-*.whl")
    return built


def _runtime_files() -> set[str]:
    """Every source file under the dbt project, the prompts and the package data folders."""
    found = {
        p.relative_to(ROOT).as_posix()
        for folder in (DBT, ROOT / "agent" / "prompts", ROOT / "agent" / "data", ROOT / "evals" / "datasets")
        for p in folder.rglob("*")
        if p.is_file() and not any(p.is_relative_to(d) for d in SKIPPED_DIRS)
    }
    return {f for f in found if not f.endswith((".py", ".pyc")) and ".duckdb" not in f and "/." not in f}


@pytest.mark.wheel
def test_wheel_carries_the_runtime_files_and_nothing_generated(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"warehouse/dbt/dbt_project.yml", "warehouse/dbt/profiles.yml"} <= names
    assert "warehouse/dbt/seeds/action_bank.csv" in names and "agent/prompts/nba/v1/system.j2" in names
    assert "warehouse/raw_contract.yml" in names  # the generator and check-sources read it
    missing = _runtime_files() - names
    assert not missing, f"files the code reads are not in the wheel: {sorted(missing)}"
    generated = [n for n in names if "/target/" in n or "/logs/" in n or ".duckdb" in n or "__pycache__" in n]
    assert generated == []
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "nba = nba.cli:main" in scripts


def test_lock_pins_every_dependency_within_its_floor() -> None:
    """requirements.lock (what `make install` installs) pins each declared dependency, dev tools
    included, at a version the declared range admits: the floors and the tested set agree."""
    project = _project()["project"]
    pins = {}
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    for text in project["dependencies"] + project["optional-dependencies"]["dev"]:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate():
            continue
        pinned = pins.get(canonicalize_name(req.name))
        assert pinned is not None, f"{req.name} is declared but not pinned in requirements.lock"
        assert req.specifier.contains(pinned, prereleases=True), (
            f"{req.name}=={pinned} is outside {req.specifier}"
        )


def _venv(where: Path, wheel: Path) -> Path:
    """A fresh venv holding only the wheel; the dependencies through a path line (see the module doc)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    install = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(python),
        "install",
        "-q",
        "--no-deps",
        "--no-index",
    ]
    subprocess.run([*install, str(wheel)], check=True, capture_output=True, text=True)
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    (Path(purelib) / "_suite_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return Path(purelib)


def _clean_env() -> dict[str, str]:
    """No setting of the suite's reaches the commands: no NBA_*/DBT_*/OPENAI_* paths or keys, no
    PYTHONPATH pointing at the clone."""
    drop = ("NBA_", "DBT_", "OPENAI_", "PYTHON", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def _files(folder: Path) -> set[str]:
    return {str(p) for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


@pytest.mark.wheel
@pytest.mark.timeout(600)
def test_installed_wheel_builds_and_plans_in_an_empty_folder(wheel: Path, tmp_path: Path) -> None:
    site = _venv(tmp_path / "venv", wheel)
    bin_ = tmp_path / "venv" / "bin"
    work = tmp_path / "empty"
    work.mkdir()
    env = _clean_env()

    def nba(*args: str, script: str = "nba") -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(bin_ / script), *args], cwd=work, env=env, capture_output=True, text=True)

    probe = "import sys, warehouse, agent.prompts, nba; print(warehouse.__file__, agent.prompts.PROMPTS_DIR, nba.__file__)"
    where = subprocess.run(
        [str(bin_ / "python"), "-c", probe], cwd=work, env=env, capture_output=True, text=True
    )
    assert where.returncode == 0, where.stderr
    assert all(Path(p).is_relative_to(site) for p in where.stdout.split()), where.stdout  # not the clone's

    for args, script in (
        (["--version"], "nba"),
        (["warehouse", "--version"], "nba"),
        (["--version"], "nba-warehouse"),
    ):
        done = nba(*args, script=script)
        assert (done.returncode, done.stdout.strip()) == (0, _project()["project"]["version"]), done.stderr

    before = _files(site)
    built = nba("warehouse", "build", "--customers", "400")
    assert built.returncode == 0, built.stderr
    assert (work / "warehouse" / "dbt" / "warehouse.duckdb").is_file()

    planned = nba("plan", "--limit", "60", "--output", "json", "--no-progress")
    assert planned.returncode == 0, planned.stderr
    summary = json.loads(planned.stdout)
    assert summary["mode"] == "rules" and summary["dry_run"] is True and summary["decisions"] > 0
    assert Path(summary["plan_file"]).is_file() and Path(summary["outbox"]).is_relative_to(work)
    assert sum(summary["counts"].values()) == summary["decisions"]
    assert _files(site) == before, "a run wrote into the installed package"
