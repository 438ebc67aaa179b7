"""Vectorized bootstrap of per-row terms: B resampled column sums without a Python loop per resample.

Every estimator here is a smooth function of a few column sums of per-row terms (IPS: sum(w*r) and
the row count; SNIPS: sum(w*r), sum(w), ...). A resample therefore only needs the column sums under
resampling weights, so the B x n weight matrix is drawn chunk by chunk and multiplied into the terms
(one BLAS matmul per chunk), in threads, one independent random stream per chunk.

Weights are an online ("Poisson") bootstrap: each row gets an independent integer count per
resample, drawn from one random byte through a 256-entry table that matches Poisson(1) to 1/256
(counts 0..5 with 94, 95, 46, 16, 4, 1 of 256) and has exactly mean 1 and variance 1, the two
moments the bootstrap needs. One byte per weight keeps 1000 x 1,000,000 weights within seconds.
Determinism: the chunk layout is a constant and chunk j always uses `SeedSequence(seed).spawn()[j]`,
so the result depends on (terms, n_bootstrap, seed) only, not on the thread count or scheduling.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

CHUNK_ROWS = 8192
# byte value v maps to count k where THRESHOLDS[k-1] <= v < THRESHOLDS[k]
THRESHOLDS = (94, 189, 235, 251, 255)


def weight_table() -> np.ndarray:
    """The 256-entry byte -> count table (for tests and documentation)."""
    v = np.arange(256)
    return sum((v >= t).astype(np.int64) for t in THRESHOLDS)  # type: ignore[return-value]


def _chunk_sums(terms32: np.ndarray, n_bootstrap: int, seq: np.random.SeedSequence) -> np.ndarray:
    m = terms32.shape[0]
    bitgen = np.random.PCG64(seq)
    raw = bitgen.random_raw((n_bootstrap * m + 7) // 8).view(np.uint8)[: n_bootstrap * m]
    u = raw.reshape(n_bootstrap, m)
    counts = np.greater_equal(u, THRESHOLDS[0]).view(np.uint8)
    for t in THRESHOLDS[1:]:
        counts += u >= t
    weights = counts.astype(np.float32)
    return (weights @ terms32).astype(np.float64)  # type: ignore[no-any-return]


def bootstrap_sums(
    terms: np.ndarray, *, n_bootstrap: int, seed: int, workers: int | None = None
) -> np.ndarray:
    """Column sums of `terms` (n x k) under `n_bootstrap` resamples: an (n_bootstrap x k) array.

    Columns are centred on their mean before the float32 matmul and the mean is added back with the
    resample's total weight, so precision does not depend on the terms' offset.
    """
    terms = np.asarray(terms, dtype=np.float64)
    if terms.ndim != 2:
        raise ValueError("terms must be a 2-d array (rows x columns)")
    if n_bootstrap < 1:
        raise ValueError("n_bootstrap must be >= 1")
    n, k = terms.shape
    mean = terms.mean(axis=0) if n else np.zeros(k)
    centred = np.empty((n, k + 1), dtype=np.float32)
    centred[:, :k] = terms - mean
    centred[:, k] = 1.0
    starts = list(range(0, n, CHUNK_ROWS))
    seqs = np.random.SeedSequence(seed).spawn(len(starts))
    workers = workers or min(len(starts), os.cpu_count() or 1) or 1

    def run(j: int) -> np.ndarray:
        return _chunk_sums(centred[starts[j] : starts[j] + CHUNK_ROWS], n_bootstrap, seqs[j])

    total = np.zeros((n_bootstrap, k + 1), dtype=np.float64)
    if workers == 1:
        for j in range(len(starts)):
            total += run(j)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for part in pool.map(run, range(len(starts))):
                total += part
    return total[:, :k] + total[:, k : k + 1] * mean  # type: ignore[no-any-return]
