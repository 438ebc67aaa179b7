"""One LightGBM booster trained with OpenMP's wait policy ACTIVE (spin) and PASSIVE (yield), side by
side, first on an idle machine and then beside busy processes (one per core, as other jobs on a
shared machine or a scheduler worker would be). Each training runs in its own process (the policy
is read when OpenMP loads).

    .venv/bin/python bench/bench_openmp_wait.py [--rows 120000] [--busy 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import time

TRAIN = """
import time, numpy as np, lightgbm
rng = np.random.default_rng(0)
x = rng.normal(size=({rows}, 60)); y = rng.poisson(np.exp(0.3 * x[:, 0] - 1)) * 20.0
t0 = time.perf_counter()
lightgbm.train({{"objective": "tweedie", "num_leaves": 15, "min_data_in_leaf": 200, "num_threads": 2,
                "verbose": -1, "force_row_wise": True}}, lightgbm.Dataset(x, y), num_boost_round=200)
print(time.perf_counter() - t0)
"""


def _spin(stop: float) -> None:
    while time.time() < stop:
        pass


def train_seconds(policy: str, rows: int) -> float:
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    out = subprocess.run(
        [sys.executable, "-c", TRAIN.format(rows=rows)], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=120_000)
    ap.add_argument("--busy", type=int, default=os.cpu_count() or 2, help="busy processes beside it")
    a = ap.parse_args()
    print(
        f"one booster, {a.rows:,} rows x 60 features, 200 rounds, 2 threads; load now {os.getloadavg()[0]:.1f}"
    )
    for busy in (0, a.busy):
        procs = [mp.Process(target=_spin, args=(time.time() + 600,)) for _ in range(busy)]
        for p in procs:
            p.start()
        try:
            active, passive = train_seconds("ACTIVE", a.rows), train_seconds("PASSIVE", a.rows)
        finally:
            for p in procs:
                p.terminate()
        print(
            f"{busy} busy processes beside it: ACTIVE {active:.1f} s, PASSIVE {passive:.1f} s "
            f"(PASSIVE / ACTIVE {passive / active:.2f}x)"
        )


if __name__ == "__main__":
    main()
