"""LightGBM, imported with OpenMP's threads told to sleep when they wait.

OpenMP's default wait policy lets a thread spin for a while after each parallel region. On a machine
whose cores are busy with other work (the shared 2-core machines this project runs on, a scheduler
worker beside other tasks) the spinning threads take the cores from the threads with work to do,
and a booster's training slows many times over (bench/README.md has the measurement).
`OMP_WAIT_POLICY=PASSIVE` makes a waiting thread yield; it is read once, when the OpenMP runtime
loads, so it is set before the first import of lightgbm. A value the user set is kept.
"""

from __future__ import annotations

import os
from types import ModuleType


def lightgbm() -> ModuleType:
    """The lightgbm module, with OMP_WAIT_POLICY defaulted to PASSIVE before it first loads."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import lightgbm as lgb

    return lgb
