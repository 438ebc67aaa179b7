"""Synthetic marketing: campaigns, daily spend, the global suppression list, and the campaign
history (touches chosen by a known stochastic logging policy, outcomes drawn from the truth)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from warehouse import truth
from warehouse.synth_people import DAY_US, US, People, ids, take_strings

TOUCH_WINDOW_DAYS = 180
LOGGING_EPSILON = 0.15  # uniform mixing: every action keeps propensity >= EPSILON / n_actions
PAID_CAMPAIGNS = (
    ("CMP-PS-BRAND", "Brand search", "paid_search", "acquisition"),
    ("CMP-PS-GENERIC", "Generic search", "paid_search", "acquisition"),
    ("CMP-SOC-SPRING", "Spring social", "paid_social", "acquisition"),
    ("CMP-SOC-BFCM", "Black Friday social", "paid_social", "acquisition"),
    ("CMP-DSP-RETARGET", "Display retargeting", "display", "retention"),
    ("CMP-AFF-PARTNERS", "Affiliate partners", "affiliate", "acquisition"),
)
CRM_COST_PER_SEND = {"email": 0.002, "sms": 0.045, "push": 0.001}
SUPPRESSION_REASONS = ("unsubscribed", "hard_bounce", "spam_complaint")


def crm_campaign_id(template_id: str) -> str:
    return f"CMP-CRM-{template_id.upper().replace('_', '-')}"


def make_campaigns(as_of_day: int) -> pa.Table:
    grid = truth.action_grid()
    templates = {a.template_id: a for a in grid}
    rows: list[tuple[str, str, str, str, int, int | None]] = [
        (crm_campaign_id(t), f"Always-on CRM: {t}", a.channel, a.segment, as_of_day - 400, None)
        for t, a in templates.items()
    ]
    for i, (cid, name, channel, objective) in enumerate(PAID_CAMPAIGNS):
        start = as_of_day - 365 + 40 * i
        rows.append((cid, name, channel, objective, start, None if i % 2 == 0 else start + 120))
    cols = list(zip(*rows, strict=True))
    return pa.table(
        {
            "campaign_id": pa.array(cols[0], pa.string()),
            "campaign_name": pa.array(cols[1], pa.string()),
            "channel": pa.array(cols[2], pa.string()),
            "objective": pa.array(cols[3], pa.string()),
            "start_date": pa.array(cols[4], pa.date32()),
            "end_date": pa.array(cols[5], pa.date32()),
        }
    )


def make_spend(
    rng: np.random.Generator, as_of_day: int, n_customers: int, campaigns: pa.Table, touches: pa.Table
) -> pa.Table:
    """Daily spend per campaign: paid media from a budget scaled to the customer base, CRM from sends."""
    scale = n_customers / 5000.0
    frames: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    starts = campaigns.column("start_date").cast(pa.int32()).to_numpy(zero_copy_only=False)
    ends = (
        campaigns.column("end_date").cast(pa.int32()).fill_null(as_of_day - 1).to_numpy(zero_copy_only=False)
    )
    cids = campaigns.column("campaign_id").to_pylist()
    for cid, s, e in zip(cids, starts, ends, strict=True):
        if cid.startswith("CMP-CRM-"):
            continue
        days = np.arange(max(s, as_of_day - 365), min(e, as_of_day - 1) + 1)
        spend = np.round(rng.lognormal(np.log(120.0 * scale + 1.0), 0.35, len(days)), 2)
        impressions = rng.poisson(spend * 90).astype(np.int64)
        clicks = rng.binomial(impressions, 0.02).astype(np.int64)
        frames.append((np.full(len(days), cid, dtype=object), days, spend, impressions, clicks))
    # CRM campaigns: cost per send, aggregated per day from the campaign history
    t_day = (touches.column("touched_at").cast(pa.int64()).to_numpy() // DAY_US).astype(np.int64)
    t_camp = np.asarray(touches.column("campaign_id").to_pylist(), dtype=object)
    t_channel = np.asarray(touches.column("channel").to_pylist(), dtype=object)
    for cid in sorted(set(t_camp.tolist())):
        sel = t_camp == cid
        days, counts = np.unique(t_day[sel], return_counts=True)
        cost = CRM_COST_PER_SEND[str(t_channel[sel][0])]
        frames.append(
            (
                np.full(len(days), cid, dtype=object),
                days,
                np.round(counts * cost, 4),
                counts.astype(np.int64),
                np.zeros(len(days), np.int64),
            )
        )
    cid, day, spend, imp, clk = (np.concatenate(x) for x in zip(*frames, strict=True))
    order = np.lexsort((cid, day))
    return pa.table(
        {
            "spend_date": pa.array(day[order].astype(np.int32), pa.date32()),
            "campaign_id": pa.array(cid[order], pa.string()),
            "spend": pa.array(spend[order], pa.float64()),
            "impressions": pa.array(imp[order]),
            "clicks": pa.array(clk[order]),
        }
    )


def make_suppressions(rng: np.random.Generator, people: People, as_of_day: int) -> pa.Table:
    n = len(people.signup_day)
    chosen = np.flatnonzero(rng.random(n) < 0.02)
    reason = rng.choice(3, len(chosen), p=(0.6, 0.3, 0.1))
    span = np.maximum(as_of_day - people.signup_day[chosen], 1)
    day = people.signup_day[chosen] + (rng.random(len(chosen)) * span).astype(np.int64)
    day = np.minimum(day, as_of_day - 1)
    return pa.table(
        {
            "customer_id": people.customer_id.take(pa.array(chosen)),
            "email": people.table.column("email").take(pa.array(chosen)),
            "reason": take_strings(SUPPRESSION_REASONS, reason),
            "suppressed_at": pa.array(day * DAY_US + 12 * 3600 * US, pa.timestamp("us")),
        }
    )


def logging_policy_probs(situation: np.ndarray, preferred: np.ndarray, consent: np.ndarray) -> np.ndarray:
    """The KNOWN logging policy: softmax over every action of the bank, mixed with uniform.

    Features: the customer's situation (which segment's templates fit), preferred channel and
    consent. Returns (n, n_actions) probabilities; each row sums to 1 and every entry is at least
    LOGGING_EPSILON / n_actions.
    """
    grid = truth.action_grid()
    k = len(grid)
    seg = np.array([a.segment for a in grid], dtype=object)
    chan = np.array([("email", "sms", "push").index(a.channel) for a in grid])
    disc = np.array([a.discount_pct for a in grid])
    logits = 1.6 * (situation[:, None] == seg[None, :])
    logits = logits + 0.7 * (preferred[:, None] == chan[None, :])
    logits = logits - 1.2 * ~consent[:, chan]
    logits = logits - 0.04 * disc[None, :]
    logits -= logits.max(axis=1, keepdims=True)
    soft = np.exp(logits)
    soft /= soft.sum(axis=1, keepdims=True)
    return (1.0 - LOGGING_EPSILON) * soft + LOGGING_EPSILON / k


def make_touches(rng: np.random.Generator, people: People, params: pa.Table, as_of_day: int) -> pa.Table:
    n = len(people.signup_day)
    eligible = people.signup_day < as_of_day - 1
    touched = eligible & (rng.random(n) < 0.40)
    count = np.where(touched, np.minimum(1 + rng.geometric(0.33, n) - 1, 5), 0)
    t_cust = np.repeat(np.arange(n), count)
    m = len(t_cust)
    start = np.maximum(people.signup_day[t_cust], as_of_day - TOUCH_WINDOW_DAYS)
    span_us = (as_of_day - start) * DAY_US - 3600 * US
    ts = start * DAY_US + (rng.random(m) * span_us).astype(np.int64)

    situation = params.column("situation").to_numpy(zero_copy_only=False)
    grid = truth.action_grid()
    order = np.lexsort((ts, t_cust))
    t_cust, ts = t_cust[order], ts[order]
    probs = logging_policy_probs(situation[t_cust], people.preferred[t_cust], people.consent[t_cust])
    cum = np.cumsum(probs, axis=1)
    choice = (cum < rng.random(m)[:, None] * cum[:, -1:]).sum(axis=1)
    choice = np.minimum(choice, len(grid) - 1)
    propensity = probs[np.arange(m), choice]
    tids = np.array([a.template_id for a in grid], dtype=object)[choice]
    channels = np.array([a.channel for a in grid], dtype=object)[choice]
    discs = np.array([a.discount_pct for a in grid])[choice]

    conv_p, rev_mean = truth.expected_reward(params.take(pa.array(t_cust)), tids, discs)
    converted = rng.random(m) < conv_p
    per_conv = np.divide(rev_mean, conv_p, out=np.zeros(m), where=conv_p > 0)
    sigma = 0.5
    revenue = np.where(converted, per_conv * rng.lognormal(-(sigma**2) / 2, sigma, m), 0.0)
    return pa.table(
        {
            "touch_id": ids("T", np.arange(1, m + 1), 9),
            "customer_id": people.customer_id.take(pa.array(t_cust)),
            "campaign_id": _campaign_ids(tids),
            "touched_at": pa.array(ts, pa.timestamp("us")),
            "template_id": pa.array(tids, pa.string()),
            "channel": pa.array(channels, pa.string()),
            "discount_pct": pa.array(discs, pa.float64()),
            "propensity": pa.array(propensity, pa.float64()),
            "converted_14d": pa.array(converted),
            "revenue_90d": pa.array(np.round(revenue, 2), pa.float64()),
        }
    )


def _campaign_ids(tids: np.ndarray) -> pa.Array:
    if len(tids) == 0:
        return pa.array([], pa.string())
    uniq, inv = np.unique(tids, return_inverse=True)
    return take_strings(tuple(crm_campaign_id(t) for t in uniq), inv)
