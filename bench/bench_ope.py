"""Bootstrap interval of DR over 1,000,000 logged touches with 1,000 resamples, vs the 15 s target
and vs a plain numpy mean over the same data (1,000 means: the floor of any 1,000-resample pass).

Run: .venv/bin/python bench/bench_ope.py [n_rows] [n_bootstrap]
"""

from __future__ import annotations

import os
import sys
import time

from evals.ope import DoublyRobust
from evals.simulate import simulate_logged, simulate_world
from evals.targets import uniform_random_target

TARGET_S = 15.0


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    b = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    world = simulate_world(200_000, seed=1)
    data = simulate_logged(world, n, seed=2)
    target = uniform_random_target(data)
    dr = DoublyRobust()
    t0 = time.perf_counter()
    terms = dr.terms(data, target)
    t1 = time.perf_counter()
    low, high = dr._interval(terms, b, 0.05, seed=0)
    t2 = time.perf_counter()
    x = terms[:, 0].copy()
    t3 = time.perf_counter()
    for _ in range(b):
        x.mean()
    floor = time.perf_counter() - t3
    boot = t2 - t1
    print(f"rows={n:,} resamples={b:,} cpus={os.cpu_count()}")
    print(f"per-row terms (reward model fit + weights): {t1 - t0:.2f} s")
    print(f"bootstrap interval: {boot:.2f} s  [{low:.4f}, {high:.4f}]")
    print(f"ratio to the {TARGET_S:.0f} s target: {boot / TARGET_S:.2f}")
    print(f"plain numpy mean x{b}: {floor:.2f} s; bootstrap / floor: {boot / floor:.1f}x")
    print(f"estimate + interval end to end: {t2 - t0:.2f} s")


if __name__ == "__main__":
    main()
