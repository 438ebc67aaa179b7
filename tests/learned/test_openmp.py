"""LightGBM is loaded with OpenMP's passive wait policy unless the user chose one (core/openmp.py):
spinning threads took the cores from the boosters on a busy machine (bench_openmp_wait.py)."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = "import os; from core.openmp import lightgbm; m = lightgbm(); print(os.environ['OMP_WAIT_POLICY'], m.__name__)"


def _probe(env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_lightgbm_loads_with_the_passive_wait_policy_and_a_users_choice_is_kept() -> None:
    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _probe(base) == "PASSIVE lightgbm"
    assert _probe({**base, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE lightgbm"
