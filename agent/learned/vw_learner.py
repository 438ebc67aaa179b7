"""Vowpal Wabbit contextual bandit (`--cb_explore_adf --cb_type dr`) on the learned features.

Training: one multi-line example per logged touch: a `shared` line with the customer block
(namespace `s`), then one line per candidate action (the customer's segment's bank on the discount
grid) with the action's identity (namespace `a`: template, channel, discount) and its
action-dependent features (namespace `x`: the customer's history matched to the action). The logged
action's line carries the label `0:cost:probability` (cost = -reward, probability = the logged
propensity). Interactions `sa` and `xa` let every customer and history feature weigh differently per
template, channel and discount. The text is built by Arrow's string kernels and read by VW's own
parser (`-d file`), not line by line through Python.

Scoring: VW's score of an action is its policy regressor's prediction, the `partial_prediction` of
that action's example (its epsilon-greedy PMF puts 1 - epsilon + epsilon/k on the lowest cost). The
regressor is linear in the hashed features above, so `VWScorer` reads its weights once
(`Workspace.get_weight` at each feature's and interaction's hash) and scores every (customer,
action) pair with numpy. `predict_pyvw` scores through VW itself; tests assert both agree.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from agent.learned.actions import ActionCatalog

FNV_PRIME = 16777619
CONSTANT_HASH = 11650396  # VW's constant feature
MASK32 = (1 << 32) - 1
DEFAULT_ARGS = "--cb_explore_adf --cb_type dr --epsilon 0.05 --interactions sa --interactions xa -b 20 -l 0.5"


def _tokens(names: tuple[str, ...], mat: np.ndarray) -> list[pa.Array]:
    """'name:value' per non-zero cell, '' for a zero (VW skips what is not written)."""
    out = []
    for j, name in enumerate(names):
        col = np.round(mat[:, j].astype(np.float64), 5)
        text = pc.binary_join_element_wise(pa.scalar(f"{name}:"), pc.cast(pa.array(col), pa.string()), "")
        out.append(pc.if_else(pa.array(col != 0), text, pa.scalar("")))
    return out


def _join(parts: list[pa.Array | pa.Scalar]) -> pa.Array:
    return pc.binary_join_element_wise(*parts, " ")  # type: ignore[no-any-return]


def action_tokens(cat: ActionCatalog) -> list[str]:
    """The `a` namespace of each catalog action (template, channel, discount as categorical)."""
    return [
        f"t={cat.template_ids[k]} ch={cat.channels[k]} d={int(cat.discounts[k])}" for k in range(len(cat))
    ]


def example_lines(
    shared: np.ndarray,
    shared_names: tuple[str, ...],
    pair_rows: np.ndarray,
    pair_actions: np.ndarray,
    pair: np.ndarray,
    pair_names: tuple[str, ...],
    cat: ActionCatalog,
    labels: pa.Array | None = None,
) -> pa.Array:
    """VW text, one line per array item, examples separated by an empty line.

    `shared` (m, C): one row per example; `pair_rows` (P,) the example of each candidate line (sorted,
    each example's candidates contiguous), `pair_actions` its catalog action, `pair` (P, F) its
    features; `labels` (P,) the label prefix of each line ('' for an unlabelled candidate)."""
    m, p = shared.shape[0], len(pair_rows)
    s_lines = _join([pa.scalar("shared |s"), *_tokens(shared_names, shared)])
    a_text = pa.array(action_tokens(cat), pa.string()).take(pa.array(pair_actions))
    x_parts: list[pa.Array | pa.Scalar] = [a_text, pa.scalar("|x"), *_tokens(pair_names, pair)]
    if labels is not None:
        prefix = pc.binary_join_element_wise(labels, pa.scalar("|a"), "")
    else:
        prefix = pa.scalar("|a")
    a_lines = _join([prefix, *x_parts])
    lines = pa.concat_arrays([s_lines, a_lines, pa.array([""] * m, pa.string())])
    example = np.concatenate([np.arange(m), pair_rows, np.arange(m)])
    slot = np.concatenate([np.zeros(m), np.ones(p), np.full(m, 2.0)])
    order = np.lexsort((np.arange(len(example)), slot, example))
    return lines.take(pa.array(order))


def write_lines(lines: pa.Array, sink: Path | BinaryIO) -> None:
    """Append lines (no quoting, one per item) to a path or an open binary file."""
    pacsv.write_csv(
        pa.table({"l": lines}),
        sink,
        write_options=pacsv.WriteOptions(include_header=False, quoting_style="none"),
    )


def train_vw(chunks: Iterable[pa.Array], args: str, model_path: Path, passes: int = 1) -> None:
    """Write the examples chunk by chunk (memory bounded by one chunk's text), then train with VW's
    native parser (`-d`) and save the model to `model_path`."""
    import vowpalwabbit

    with tempfile.TemporaryDirectory(prefix="nba-vw-") as tmp:
        data = Path(tmp) / "train.vw"
        with open(data, "wb") as fh:
            for lines in chunks:
                write_lines(lines, fh)
        extra = (
            f" --passes {passes} -c --cache_file {Path(tmp) / 'cache'} --holdout_off" if passes > 1 else ""
        )
        vw = vowpalwabbit.Workspace(f"{args} --quiet -d {data} -f {model_path}{extra}")
        vw.finish()


@dataclass(frozen=True, eq=False)
class VWScorer:
    """VW's policy regressor as dense arrays: cost(i, k) = const + s_i.(w_s + W_sa[:, k]) + b_k
    + x_ik.(w_x + W_xa[:, k]) for catalog action k."""

    const: float
    w_s: np.ndarray  # (C,)
    w_x: np.ndarray  # (F,)
    bias: np.ndarray  # (K,)
    W_sa: np.ndarray  # (C, K)
    W_xa: np.ndarray  # (F, K)

    @classmethod
    def from_model(
        cls,
        model_path: Path,
        args: str,
        shared_names: tuple[str, ...],
        pair_names: tuple[str, ...],
        cat: ActionCatalog,
    ) -> VWScorer:
        """Read the policy regressor's weights. With `--cb_type dr` VW interleaves a second regressor
        (the DR reward model) with the policy's: feature hash h lives at index 2h, the policy at +0."""
        import vowpalwabbit

        vw = vowpalwabbit.Workspace(f"-i {model_path} --quiet -t")
        try:
            mult = 2 if "--cb_type dr" in " ".join(args.split()) else 1
            bits = vw.num_weights() - 1

            def w(h: int) -> float:
                return float(vw.get_weight((h * mult) & bits))

            hs, hx, ha = vw.hash_space("s"), vw.hash_space("x"), vw.hash_space("a")
            s_h = [vw.hash_feature(n, hs) for n in shared_names]
            x_h = [vw.hash_feature(n, hx) for n in pair_names]
            a_h = [[vw.hash_feature(t, ha) for t in toks.split()] for toks in action_tokens(cat)]
            inter = lambda h1, h2: ((FNV_PRIME * h1) ^ h2) & MASK32  # noqa: E731
            return cls(
                const=w(CONSTANT_HASH),
                w_s=np.array([w(h) for h in s_h]),
                w_x=np.array([w(h) for h in x_h]),
                bias=np.array([sum(w(h) for h in hk) for hk in a_h]),
                W_sa=np.array([[sum(w(inter(h1, h2)) for h2 in hk) for hk in a_h] for h1 in s_h]),
                W_xa=np.array([[sum(w(inter(h1, h2)) for h2 in hk) for hk in a_h] for h1 in x_h]),
            )
        finally:
            vw.finish()

    def cost(
        self, shared: np.ndarray, pair_rows: np.ndarray, pair_actions: np.ndarray, pair: np.ndarray
    ) -> np.ndarray:
        """Predicted cost of each (customer row, action) pair; `shared` holds one row per customer."""
        s = shared.astype(np.float64)
        base = self.const + s @ self.w_s
        out = base[pair_rows] + self.bias[pair_actions] + pair.astype(np.float64) @ self.w_x
        for k in np.unique(pair_actions):
            sel = np.flatnonzero(pair_actions == k)
            out[sel] += s[pair_rows[sel]] @ self.W_sa[:, k] + pair[sel].astype(np.float64) @ self.W_xa[:, k]
        return out


def predict_pyvw(model_path: Path, lines: pa.Array) -> tuple[list[list[float]], list[list[float]]]:
    """Through VW itself: per example, the partial prediction (cost) of each action and the PMF
    (in action order)."""
    import vowpalwabbit

    vw = vowpalwabbit.Workspace(f"-i {model_path} --quiet -t")
    costs, pmfs = [], []
    try:
        block: list[str] = []
        for line in [*lines.to_pylist(), ""]:
            if line:
                block.append(line)
                continue
            if not block:
                continue
            ex = vw.parse(block)
            pmf = vw.predict(ex)
            costs.append([e.get_partial_prediction() for e in ex[1:]])
            pmfs.append(list(pmf))
            vw.finish_example(ex)
            block = []
    finally:
        vw.finish()
    return costs, pmfs


def label_prefixes(chosen: np.ndarray, cost: np.ndarray, probability: np.ndarray) -> pa.Array:
    """'0:cost:probability ' on the logged action's line (VW's cb label), '' on the other lines."""
    text = pc.binary_join_element_wise(
        pa.scalar("0"),
        pc.cast(pa.array(np.round(cost.astype(np.float64), 6)), pa.string()),
        pc.cast(pa.array(np.round(probability.astype(np.float64), 8)), pa.string()),
        ":",
    )
    return pc.if_else(pa.array(chosen), pc.binary_join_element_wise(text, pa.scalar(" "), ""), pa.scalar(""))
