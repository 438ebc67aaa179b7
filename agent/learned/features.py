"""Features of the learned value model: the customer 360, each customer's own response history, and
the action (template, channel, discount), computed only from touches before a cut-off.

History. For every customer, counts, conversions and revenue of their logged touches per key: all
touches, per channel, per template family (the bank segment a template belongs to), per discount
level, per template and per (template, discount) cell. Only touches with `touched_at < cutoff` are
aggregated (`history_stats` filters before it reads anything else), so a model trained on touches
before a cut-off and evaluated on the touches after it never sees an outcome it is evaluated on.

Rates are smoothed hierarchically: a customer's overall rate is shrunk towards the population's
(`prior_customer` pseudo-touches), and a key's rate towards the customer's overall rate times the
key's population lift (`prior_key` pseudo-touches). The population rates (`Priors`) are fitted on the
training touches and stored with the model, so scoring uses the same ones.

Training rows are logged touches, featurised as of their touch (`FeatureParams`, both on by
default): the history of a row sums only the customer's touches before that row's touch
(`row_history`), and its customer block is the 360 as of the touch's day (`point_in_time`). A
leave-one-out history (every touch before the cut-off but the row's own, `loo=`) is the fallback
when the as-of history is switched off: it lets the row's own outcome back in through the
customer's total, which a learner can read off against the customer's other rows. At decision time
all touches before the cut-off and the current 360 are used: that is point-in-time for a decision
made now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from agent.learned.actions import DISCOUNT_LEVELS, ActionCatalog, default_catalog
from agent.learned.data import logged_touches
from agent.learned.point_in_time import CustomerTimeline
from core.contracts import CHANNELS, SEGMENTS

# --- the customer block (customer 360 + segment scores) -------------------------------------------
_CUSTOMER_SQL = """
select c.customer_id, s.segment,
    c.tenure_days, c.orders_count, c.lifetime_revenue, c.avg_order_value, c.recency_days,
    c.usual_gap_days, c.gap_ratio, c.rfm_recency_score, c.rfm_frequency_score, c.rfm_monetary_score,
    c.sessions_7d, c.sessions_30d, c.product_views_30d, c.add_to_cart_30d, c.checkouts_30d,
    c.latest_nps_score, c.consent_email, c.consent_sms, c.consent_push, c.preferred_channel,
    s.score_high_value_lapse_risk, s.score_new_users_first_week_intent, s.score_churn_rescue_nps
from main.mart_marketing__customer_360 as c
join main.mart_marketing__segment_scores as s using (customer_id)
where {where}
order by c.customer_id
"""
_LOG_COLS = (
    "tenure_days",
    "orders_count",
    "lifetime_revenue",
    "avg_order_value",
    "sessions_7d",
    "sessions_30d",
    "product_views_30d",
    "add_to_cart_30d",
    "checkouts_30d",
)
_RAW_COLS = (
    "rfm_recency_score",
    "rfm_frequency_score",
    "rfm_monetary_score",
    "score_high_value_lapse_risk",
    "score_new_users_first_week_intent",
    "score_churn_rescue_nps",
)
_BOOL_COLS = ("consent_email", "consent_sms", "consent_push")
# nullable columns: value (log1p, nulls -> 0) and a "known" flag
_NULLABLE = ("recency_days", "usual_gap_days", "gap_ratio", "latest_nps_score")
BASE_FEATURES: tuple[str, ...] = (
    tuple(f"log_{c}" for c in _LOG_COLS)
    + _RAW_COLS
    + _BOOL_COLS
    + tuple(x for c in _NULLABLE for x in (f"log_{c}", f"has_{c}"))
    + tuple(f"pref_{ch}" for ch in CHANNELS)
    + tuple(f"seg_{s}" for s in SEGMENTS)
)

# --- history keys: one column per key of the (n_customers, N_KEYS) count / conversion / revenue sums
KEY_TYPES = ("all", "channel", "family", "discount", "template", "cell")


@dataclass(frozen=True)
class KeyLayout:
    """Column offsets of each key type in the history arrays, and each action's key per type."""

    offsets: dict[str, int]
    size: int
    action_keys: dict[str, np.ndarray]  # key type -> (n_actions,) column index

    @classmethod
    def for_catalog(cls, cat: ActionCatalog) -> KeyLayout:
        widths = {
            "all": 1,
            "channel": len(CHANNELS),
            "family": len(SEGMENTS),
            "discount": len(DISCOUNT_LEVELS),
            "template": len(cat.templates),
            "cell": len(cat),
        }
        offsets, pos = {}, 0
        for t in KEY_TYPES:
            offsets[t], pos = pos, pos + widths[t]
        local = {
            "all": np.zeros(len(cat), dtype=np.int64),
            "channel": cat.channel_code,
            "family": cat.family_code,
            "discount": cat.discount_code,
            "template": cat.template_code,
            "cell": np.arange(len(cat)),
        }
        return cls(offsets, pos, {t: offsets[t] + local[t] for t in KEY_TYPES})


@dataclass(frozen=True)
class FeatureParams:
    prior_customer: float = 20.0  # pseudo-touches shrinking a customer's overall rate to the population's
    prior_key: float = 10.0  # pseudo-touches shrinking a key's rate to the customer's overall x key lift
    # training rows: history from the customer's touches before the row's touch (else leave-one-out)
    history_as_of_touch: bool = True
    # training rows: the 360 block as of the touch's day (else the block as of the cut-off)
    base_as_of_touch: bool = True

    def as_dict(self) -> dict[str, float | bool]:
        return {
            "prior_customer": self.prior_customer,
            "prior_key": self.prior_key,
            "history_as_of_touch": self.history_as_of_touch,
            "base_as_of_touch": self.base_as_of_touch,
        }


@dataclass(frozen=True, eq=False)
class Priors:
    """Population conversion and revenue rates per history key (fitted on the training touches)."""

    conv: np.ndarray  # (N_KEYS,)
    rev: np.ndarray

    def as_dict(self) -> dict[str, list[float]]:
        return {"conv": self.conv.tolist(), "rev": self.rev.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Priors:
        return cls(np.asarray(d["conv"], dtype=np.float64), np.asarray(d["rev"], dtype=np.float64))


@dataclass(frozen=True, eq=False)
class CustomerFeatures:
    """One row per customer: the 360 block and the history sums per key (touches before `cutoff`)."""

    customer_ids: np.ndarray  # (n,) str, sorted
    segments: np.ndarray  # (n,) object (None for a customer outside every segment)
    base: np.ndarray  # (n, len(BASE_FEATURES)) float32
    n: np.ndarray  # (n, N_KEYS) float32 touch counts
    conv: np.ndarray  # conversions
    rev: np.ndarray  # revenue_90d
    cutoff: datetime | None
    # the dated facts behind the 360, for training rows' blocks as of their touch (None: features
    # built from tables without the warehouse; training rows then take the block as of the cut-off)
    timeline: CustomerTimeline | None = None

    def __len__(self) -> int:
        return len(self.customer_ids)

    def rows_of(self, customer_ids: np.ndarray | Sequence[str] | pa.ChunkedArray | pa.Array) -> np.ndarray:
        """Row index of each customer id; -1 for an unknown one (Arrow arrays are used as they are)."""
        ids = (
            customer_ids
            if isinstance(customer_ids, pa.ChunkedArray | pa.Array)
            else pa.array(np.asarray(customer_ids, dtype=object), pa.string())
        )
        pos = pc.index_in(ids, value_set=pa.array(self.customer_ids, pa.string()))
        return np.asarray(pc.fill_null(pos, -1).to_numpy(zero_copy_only=False), dtype=np.int64)


def _arrow(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> pa.Table:
    rel = con.sql(sql, params=params or None)
    return rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()  # DuckDB 1.x


def customer_table(
    con: duckdb.DuckDBPyConnection, *, customer_ids: Sequence[str] | None = None, segmented_only: bool = True
) -> pa.Table:
    """Customer 360 + segment scores (the columns of `_CUSTOMER_SQL`), sorted by customer_id."""
    clauses, params = ["true"], []
    if segmented_only:
        clauses.append("s.segment is not null")
    if customer_ids is not None:
        clauses.append("c.customer_id in (select unnest(?::varchar[]))")
        params.append(list(customer_ids))
    return _arrow(con, _CUSTOMER_SQL.format(where=" and ".join(clauses)), params)


def _num(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)


def base_matrix(customers: pa.Table, *, unknown_as_nan: bool = False) -> np.ndarray:
    """The customer block (BASE_FEATURES order) from a `customer_table` result. With
    `unknown_as_nan`, a null count or score stays NaN (unknown, which LightGBM routes on its own)
    instead of 0: the as-of block's web windows before the warehouse's web data are unknown."""
    fill = (lambda v: v) if unknown_as_nan else np.nan_to_num
    cols: list[np.ndarray] = [np.log1p(np.clip(fill(_num(customers, c)), 0, None)) for c in _LOG_COLS]
    cols += [fill(_num(customers, c)) for c in _RAW_COLS]
    cols += [np.nan_to_num(_num(customers, c)) for c in _BOOL_COLS]
    for c in _NULLABLE:
        v = _num(customers, c)
        cols += [np.log1p(np.clip(np.nan_to_num(v), 0, None)), (~np.isnan(v)).astype(np.float64)]
    pref = np.asarray(customers.column("preferred_channel").to_numpy(zero_copy_only=False), dtype=object)
    seg = np.asarray(customers.column("segment").to_numpy(zero_copy_only=False), dtype=object)
    cols += [(pref == ch).astype(np.float64) for ch in CHANNELS]
    cols += [(seg == s).astype(np.float64) for s in SEGMENTS]
    return np.column_stack(cols).astype(np.float32)


def touch_actions(touches: pa.Table, cat: ActionCatalog) -> np.ndarray:
    """Catalog index of each touch's (template, discount), discount snapped to the grid; -1 when the
    template is not in the catalog. Templates go through Arrow's dictionary encoding (no Python
    string per row: 23M touches in a few hundred MB)."""
    enc = pc.dictionary_encode(touches.column("template_id")).combine_chunks()
    codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    names = np.array(enc.dictionary.to_pylist(), dtype=object)
    return cat.indices_coded(
        codes, names, touches.column("discount_pct").to_numpy(zero_copy_only=False), snap=True
    )


def _before(touches: pa.Table, cutoff: datetime | None) -> pa.Table:
    if cutoff is None:
        return touches
    ts = pa.scalar(
        cutoff.astimezone(UTC).replace(tzinfo=None) if cutoff.tzinfo else cutoff, pa.timestamp("us")
    )
    return touches.filter(pc.less(touches.column("touched_at"), ts))


def history_stats(
    customer_ids: np.ndarray, touches: pa.Table, cutoff: datetime | None, cat: ActionCatalog
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, conv, rev) sums per customer x key over the touches strictly before `cutoff`."""
    layout = KeyLayout.for_catalog(cat)
    touches = _before(touches, cutoff)  # the only place touches are read: nothing after the cut-off
    n_cust = len(customer_ids)
    out = [np.zeros((n_cust, layout.size), dtype=np.float64) for _ in range(3)]
    if touches.num_rows == 0 or n_cust == 0:
        return tuple(o.astype(np.float32) for o in out)  # type: ignore[return-value]
    rows = np.asarray(
        pc.fill_null(
            pc.index_in(touches.column("customer_id"), value_set=pa.array(customer_ids, pa.string())), -1
        ).to_numpy(zero_copy_only=False),
        dtype=np.int64,
    )
    acts = touch_actions(touches, cat)
    keep = (rows >= 0) & (acts >= 0)
    rows, acts = rows[keep], acts[keep]
    conv = touches.column("converted_14d").to_numpy(zero_copy_only=False)[keep].astype(np.float64)
    rev = touches.column("revenue_90d").to_numpy(zero_copy_only=False)[keep].astype(np.float64)
    size = n_cust * layout.size
    for t in KEY_TYPES:
        flat = rows * layout.size + layout.action_keys[t][acts]
        out[0] += np.bincount(flat, minlength=size).reshape(n_cust, -1)
        out[1] += np.bincount(flat, weights=conv, minlength=size).reshape(n_cust, -1)
        out[2] += np.bincount(flat, weights=rev, minlength=size).reshape(n_cust, -1)
    return tuple(o.astype(np.float32) for o in out)  # type: ignore[return-value]


def build_customer_features(
    customers: pa.Table,
    touches: pa.Table,
    *,
    cutoff: datetime | None = None,
    catalog: ActionCatalog | None = None,
    timeline: CustomerTimeline | None = None,
) -> CustomerFeatures:
    """Customer block + history sums from `touches` (TOUCH_SCHEMA) strictly before `cutoff`;
    `timeline` (CustomerTimeline.load) lets training rows take the block as of their touch."""
    cat = catalog or default_catalog()
    ids = np.asarray(customers.column("customer_id").to_numpy(zero_copy_only=False), dtype=object)
    n, conv, rev = history_stats(ids, touches, cutoff, cat)
    segs = np.asarray(customers.column("segment").to_numpy(zero_copy_only=False), dtype=object)
    return CustomerFeatures(ids, segs, base_matrix(customers), n, conv, rev, cutoff, timeline)


def load_customer_features(
    con: duckdb.DuckDBPyConnection,
    *,
    before: datetime | None = None,
    customer_ids: Sequence[str] | None = None,
    catalog: ActionCatalog | None = None,
    timeline: bool = True,
) -> CustomerFeatures:
    """What `LearnedModel.score` needs at decision time: the segmented customers (or `customer_ids`)
    with their history from the warehouse (campaign history + own decisions) before `before`, and
    (`timeline`) the dated facts behind the 360 that training rows as of their touch read."""
    customers = customer_table(con, customer_ids=customer_ids, segmented_only=customer_ids is None)
    ids = customers.column("customer_id").to_pylist()
    if customer_ids is None:  # every segmented customer: a filter on the mart, not an id list
        touches = logged_touches(con, before=before, segmented_only=True)
    else:
        touches = logged_touches(con, before=before, customer_ids=ids)
    facts = CustomerTimeline.load(con, ids) if timeline else None
    return build_customer_features(customers, touches, cutoff=before, catalog=catalog, timeline=facts)


def training_base(cf: CustomerFeatures, rows: np.ndarray, at: np.ndarray) -> np.ndarray | None:
    """The 360 block of customer row `rows[i]` as of `at[i]`'s day (point_in_time), unknown web
    windows as NaN; None when cf has no timeline (features built without the warehouse)."""
    if cf.timeline is None:
        return None
    return base_matrix(cf.timeline.base_table(cf.customer_ids[rows], at), unknown_as_nan=True)


@dataclass(frozen=True, eq=False)
class RowHistory:
    """Per training row: the customer's history sums per key (as `CustomerFeatures.n/conv/rev`) over
    the touches strictly before that row's touch."""

    n: np.ndarray  # (m, N_KEYS) float32
    conv: np.ndarray
    rev: np.ndarray

    def take(self, idx: np.ndarray) -> RowHistory:
        return RowHistory(self.n[idx], self.conv[idx], self.rev[idx])


def row_history(
    cf: CustomerFeatures,
    touches: pa.Table,
    rows: np.ndarray,
    at: np.ndarray,
    cat: ActionCatalog | None = None,
) -> RowHistory:
    """History sums of customer row `rows[i]` of cf over its touches (from `touches`, before cf's
    cutoff) strictly before `at[i]` (datetime64[us]). Per key type the touches are sorted once by
    (customer, key, time) and each row's sums are two binary searches into prefix sums, so the cost is
    one sort of the touches per key type plus a few searches per row and key, never a range join."""
    cat = cat or default_catalog()
    layout = KeyLayout.for_catalog(cat)
    touches = _before(touches, cf.cutoff)
    m = len(rows)
    out = [np.zeros((m, layout.size), dtype=np.float32) for _ in range(3)]
    cust = cf.rows_of(touches.column("customer_id"))
    acts = touch_actions(touches, cat)
    keep = (cust >= 0) & (acts >= 0)
    if not keep.any() or m == 0:
        return RowHistory(*out)
    cust, acts = cust[keep], acts[keep]
    ts = touches.column("touched_at").cast(pa.int64()).to_numpy(zero_copy_only=False)[keep]
    conv = touches.column("converted_14d").to_numpy(zero_copy_only=False)[keep].astype(np.float64)
    rev = touches.column("revenue_90d").to_numpy(zero_copy_only=False)[keep].astype(np.float64)
    # a time as its rank (how many touches are earlier): a sort key of (group, rank) fits in int64
    by_time = np.argsort(ts)
    sorted_ts = ts[by_time]
    new = np.r_[True, sorted_ts[1:] != sorted_ts[:-1]]
    rank = np.empty(len(ts), dtype=np.int64)
    rank[by_time] = np.maximum.accumulate(np.where(new, np.arange(len(ts)), 0))
    q_rank = np.searchsorted(sorted_ts, np.asarray(at, dtype="datetime64[us]").astype(np.int64), side="left")
    del by_time, sorted_ts, new
    span = len(ts) + 1
    rows = np.asarray(rows, dtype=np.int64)
    for t in KEY_TYPES:
        first = layout.offsets[t]
        nxt = KEY_TYPES.index(t) + 1
        width = (layout.offsets[KEY_TYPES[nxt]] if nxt < len(KEY_TYPES) else layout.size) - first
        key = (cust * width + layout.action_keys[t][acts] - first) * span + rank
        order = np.argsort(key)  # ties share group and time: their order does not matter
        key = key[order]
        c_sum = np.concatenate([[0.0], np.cumsum(conv[order])])
        r_sum = np.concatenate([[0.0], np.cumsum(rev[order])])
        # where each (customer, key) group starts: one search per group, queries in order
        starts = np.searchsorted(key, np.arange(len(cf) * width + 1, dtype=np.int64) * span)
        for j in range(width):
            group = rows * width + j
            lo = starts[group]
            hi = np.searchsorted(key, group * span + q_rank, side="left")
            out[0][:, first + j] = hi - lo
            out[1][:, first + j] = c_sum[hi] - c_sum[lo]
            out[2][:, first + j] = r_sum[hi] - r_sum[lo]
    return RowHistory(*out)


def fit_priors(n: np.ndarray, conv: np.ndarray, rev: np.ndarray) -> Priors:
    """Population rate per key from the customers' sums (keys never seen get the overall rate)."""
    tot_n, tot_c, tot_r = (
        n.sum(axis=0, dtype=np.float64),
        conv.sum(axis=0, dtype=np.float64),
        rev.sum(axis=0, dtype=np.float64),
    )
    all_n = max(tot_n[0], 1.0)
    c0, r0 = tot_c[0] / all_n, tot_r[0] / all_n
    safe = np.maximum(tot_n, 1.0)
    return Priors(np.where(tot_n > 0, tot_c / safe, c0), np.where(tot_n > 0, tot_r / safe, r0))


# --- model matrices --------------------------------------------------------------------------------
CUSTOMER_HISTORY = (
    ("h_log_n", "h_conv", "h_rev", "h_rev_per_conv")
    + tuple(f"h_share_{s}" for s in SEGMENTS)
    + tuple(f"h_conv_{s}" for s in SEGMENTS)
)
CUSTOMER_FEATURES = BASE_FEATURES + CUSTOMER_HISTORY
PAIR_KEY_TYPES = ("channel", "template", "discount", "cell")
PAIR_FEATURES = tuple(f"{t}_{s}" for t in PAIR_KEY_TYPES for s in ("log_n", "conv", "rev")) + (
    "is_preferred",
    "discount",
    "sqrt_discount",
)
REV_SCALE = 100.0  # revenue features are in hundreds (keeps linear learners well conditioned)


@dataclass(frozen=True)
class LOO:
    """Leave-one-out: the logged touch of each training row, taken out of that row's history."""

    action: np.ndarray  # (m,) catalog index of the row's logged action
    conv: np.ndarray  # (m,) its outcome
    rev: np.ndarray


def _sums(
    cf: CustomerFeatures,
    rows: np.ndarray,
    cols: np.ndarray,
    loo: LOO | None,
    loo_cols: np.ndarray | None,
    history: RowHistory | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if history is not None:  # per-row sums before each row's touch: nothing to leave out
        i = np.arange(len(rows))
        return tuple(  # type: ignore[return-value]
            a[i, cols].astype(np.float64) for a in (history.n, history.conv, history.rev)
        )
    n = cf.n[rows, cols].astype(np.float64)
    c = cf.conv[rows, cols].astype(np.float64)
    r = cf.rev[rows, cols].astype(np.float64)
    if loo is not None and loo_cols is not None:
        same = (cols == loo_cols).astype(np.float64)
        n, c, r = n - same, c - same * loo.conv, r - same * loo.rev
    return np.maximum(n, 0), np.maximum(c, 0), np.maximum(r, 0)


def _overall(
    cf: CustomerFeatures,
    priors: Priors,
    params: FeatureParams,
    rows: np.ndarray,
    loo: LOO | None,
    history: RowHistory | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    zero = np.zeros(len(rows), dtype=np.int64)
    n, c, r = _sums(cf, rows, zero, loo, zero if loo is not None else None, history)
    m0 = params.prior_customer
    return n, (c + m0 * priors.conv[0]) / (n + m0), (r + m0 * priors.rev[0]) / (n + m0)


def customer_matrix(
    cf: CustomerFeatures,
    priors: Priors,
    params: FeatureParams,
    rows: np.ndarray,
    loo: LOO | None = None,
    catalog: ActionCatalog | None = None,
    *,
    base: np.ndarray | None = None,
    history: RowHistory | None = None,
) -> np.ndarray:
    """(m, len(CUSTOMER_FEATURES)) float32 for customer rows `rows` (training rows: `base` and
    `history` as of each row's touch, or `loo`): the 360 block, then the overall history (touches,
    smoothed conversion and revenue rates, revenue per conversion), each family's share of the
    touches and its smoothed conversion rate."""
    layout = KeyLayout.for_catalog(catalog or default_catalog())
    n, conv, rev = _overall(cf, priors, params, rows, loo, history)
    zero = np.zeros(len(rows), dtype=np.int64)
    _, c_all, r_all = _sums(cf, rows, zero, loo, zero if loo is not None else None, history)
    rpc_prior = priors.rev[0] / max(priors.conv[0], 1e-9)
    rpc = (r_all + 2.0 * rpc_prior) / (c_all + 2.0)  # revenue per conversion, 2 pseudo-conversions
    shares, fam_conv = [], []
    loo_fam = None if loo is None else layout.action_keys["family"][loo.action]
    for j in range(len(SEGMENTS)):
        key = layout.offsets["family"] + j
        fn, fc, _ = _sums(cf, rows, np.full(len(rows), key), loo, loo_fam, history)
        lift = priors.conv[key] / max(priors.conv[0], 1e-9)
        shares.append(fn / np.maximum(n, 1.0))
        fam_conv.append((fc + params.prior_key * conv * lift) / (fn + params.prior_key))
    hist = np.column_stack([np.log1p(n), conv, rev / REV_SCALE, rpc / REV_SCALE, *shares, *fam_conv])
    return np.hstack([cf.base[rows] if base is None else base, hist.astype(np.float32)])


def pair_matrix(
    cf: CustomerFeatures,
    priors: Priors,
    params: FeatureParams,
    rows: np.ndarray,
    actions: np.ndarray,
    loo: LOO | None = None,
    catalog: ActionCatalog | None = None,
    *,
    base: np.ndarray | None = None,
    history: RowHistory | None = None,
) -> np.ndarray:
    """(m, len(PAIR_FEATURES)) float32: the customer's own history matched to the action (its
    channel, template, discount level, exact cell), smoothed; plus preferred-channel and discount.
    Training rows pass `base` and `history` as of each row's touch (as customer_matrix)."""
    cat = catalog or default_catalog()
    layout = KeyLayout.for_catalog(cat)
    n0, conv0, rev0 = _overall(cf, priors, params, rows, loo, history)
    m = params.prior_key
    cols = []
    for t in PAIR_KEY_TYPES:
        keys = layout.action_keys[t][actions]
        loo_keys = None if loo is None else layout.action_keys[t][loo.action]
        n, c, r = _sums(cf, rows, keys, loo, loo_keys, history)
        lift_c = priors.conv[keys] / max(priors.conv[0], 1e-9)
        lift_r = priors.rev[keys] / max(priors.rev[0], 1e-9)
        cols += [
            np.log1p(n),
            (c + m * conv0 * lift_c) / (n + m),
            (r + m * rev0 * lift_r) / (n + m) / REV_SCALE,
        ]
    block = cf.base[rows] if base is None else base
    pref_col = block[:, BASE_FEATURES.index("pref_email") : BASE_FEATURES.index("pref_email") + 3]
    is_pref = pref_col[np.arange(len(rows)), cat.channel_code[actions]]
    d = cat.discounts[actions]
    cols += [is_pref.astype(np.float64), d / 5.0, np.sqrt(d / 5.0)]
    return np.column_stack(cols).astype(np.float32)
