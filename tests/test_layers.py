"""Layers that hold: the import contracts in pyproject.toml ([tool.importlinter]: one `layers`
contract and the one ban it cannot express) pass, a breach fails the contract it breaks, and no
module of the product is part of an import cycle."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "warehouse", "guardrails", "agent", "activation", "evals", "orchestration", "nba")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(cwd)},
    )


def test_import_contracts_hold() -> None:
    proc = _lint(ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "0 broken" in proc.stdout


LAYERS = "layers: testing > nba | orchestration"  # the one layers contract, by the start of its name


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("guardrails/engine.py", "import agent.policies.rules", LAYERS),  # up a floor
        ("guardrails/message.py", "import activation.delivery", LAYERS),
        ("core/contracts.py", "import warehouse.paths", LAYERS),
        (
            "activation/run.py",
            "import orchestration.steps",
            LAYERS,
        ),  # the import the Spark step's move removed
        ("evals/harness.py", "import activation.run", LAYERS),  # siblings on one floor
        ("warehouse/paths.py", "import guardrails.clock", LAYERS),
        ("activation/plan.py", "import testing.invariants", LAYERS),  # the product never imports test doubles
        ("agent/api.py", "import nba.cli", LAYERS),  # the command sits on top: nothing below reaches it
        ("agent/policies/rules.py", "import guardrails.engine", "only the pipeline imports the guardrails"),
    ],
)
def test_a_breach_breaks_its_contract(tmp_path: Path, module: str, line: str, contract: str) -> None:
    """The same contracts on a copy of the code with one forbidden import added."""
    for name in (*PACKAGES, "testing"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "dbt"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    proc = _lint(tmp_path)
    assert proc.returncode != 0
    broken = [ln for ln in proc.stdout.splitlines() if ln.endswith("BROKEN")]
    assert any(contract in b for b in broken) or contract in proc.stdout.split("Broken contracts")[-1], (
        proc.stdout[-2000:]
    )


def test_no_import_cycles() -> None:
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False)
    cycles = []
    for importer in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(importer):
            if importer.startswith(imported + ".") or imported.startswith(importer + "."):
                continue  # a package and its own submodule (e.g. __init__ re-exports)
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back:
                cycles.append(" -> ".join((importer, *back)))
    assert cycles == [], cycles[:5]
