"""Synthetic marketing: campaigns, daily spend, the global suppression list, and the campaign
history (touches chosen by a known stochastic logging policy, outcomes drawn from the truth)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from warehouse import truth
from warehouse.synth_people import DAY_US, US, People, ids, take_strings

TOUCH_WINDOW_DAYS = 365
LOGGING_EPSILON = 0.10  # uniform mixing: every action keeps propensity >= EPSILON / n_actions
# Always-on CRM over the last year: every customer gets an occasional touch; customers in one of the
# incumbent CRM's lifecycle audiences (see generate._lifecycle_audience: lapsing high-value buyers,
# first-week users, recent detractors) get that program's sequence, about 5 messages a week across
# email, SMS and push (a retailer's lifecycle cadence). Counts are Poisson over the customer's days in
# the window.
BASE_TOUCHES_PER_DAY = 0.01
LIFECYCLE_TOUCHES_PER_DAY = 0.7
# The incumbent playbook the logging policy follows (with exploration): each situation's primary
# template per channel, at a 5% discount.
PLAYBOOK_TEMPLATES = frozenset(
    {
        "winback_soft",
        "winback_sms",
        "onboarding_tips",
        "onboarding_push",
        "cs_followup_offer",
        "cs_apology_sms",
    }
)
CUSTOMER_CHUNK = 100_000  # customers per chunk of touches (bounds memory at millions of customers)
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
    # CRM campaigns: cost per send, aggregated per day from the campaign history (a few thousand
    # (campaign, day) groups, whatever the number of touches)
    per_day = (
        pa.table(
            {
                "campaign_id": touches.column("campaign_id").cast(pa.string()),
                "channel": touches.column("channel").cast(pa.string()),
                "day": pc.divide(touches.column("touched_at").cast(pa.int64()), DAY_US),
            }
        )
        .group_by(["campaign_id", "channel", "day"])
        .aggregate([([], "count_all")])
    )
    counts = per_day.column("count_all").to_numpy().astype(np.int64)
    cost = np.array([CRM_COST_PER_SEND[c] for c in per_day.column("channel").to_pylist()])
    frames.append(
        (
            np.asarray(per_day.column("campaign_id").to_pylist(), dtype=object),
            per_day.column("day").to_numpy().astype(np.int64),
            np.round(counts * cost, 4),
            counts,
            np.zeros(len(counts), np.int64),
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
    """The KNOWN logging policy: the incumbent CRM playbook as a softmax over every action of the
    bank, mixed with uniform exploration.

    Logits: +2.5 for the templates of the customer's situation, +1.0 for the preferred channel,
    -3.0 for a channel without consent, +1.0 for the playbook templates, -0.1 per discount point
    away from 5%. Returns (n, n_actions) probabilities; each row sums to 1 and every entry is at
    least LOGGING_EPSILON / n_actions.
    """
    grid = truth.action_grid()
    k = len(grid)
    seg = np.array([a.segment for a in grid], dtype=object)
    chan = np.array([truth.CHANNELS.index(a.channel) for a in grid])
    disc = np.array([a.discount_pct for a in grid])
    playbook = np.array([a.template_id in PLAYBOOK_TEMPLATES for a in grid])
    logits = 2.5 * (situation[:, None] == seg[None, :])
    logits = logits + 1.0 * (preferred[:, None] == chan[None, :])
    logits = logits - 3.0 * ~consent[:, chan]
    logits = logits + 1.0 * playbook[None, :] - 0.1 * np.abs(disc[None, :] - 5.0)
    logits -= logits.max(axis=1, keepdims=True)
    soft = np.exp(logits)
    soft /= soft.sum(axis=1, keepdims=True)
    return (1.0 - LOGGING_EPSILON) * soft + LOGGING_EPSILON / k


@dataclass(frozen=True)
class _Actions:
    """The action grid as arrays; its strings as Arrow dictionaries (a few bytes per touch at millions
    of rows), each holding distinct values, indexed through the action's template / channel code."""

    k: int
    discs: np.ndarray
    template_of: np.ndarray
    channel_of: np.ndarray
    template_names: pa.Array
    channel_names: pa.Array
    campaign_names: pa.Array


def _actions() -> _Actions:
    grid = truth.action_grid()
    tids = np.array([a.template_id for a in grid], dtype=object)
    templates = sorted(set(tids.tolist()))
    return _Actions(
        k=len(grid),
        discs=np.array([a.discount_pct for a in grid]),
        template_of=np.array([templates.index(t) for t in tids], dtype=np.int32),
        channel_of=np.array([truth.CHANNELS.index(a.channel) for a in grid], dtype=np.int32),
        template_names=pa.array(templates, pa.string()),
        channel_names=pa.array(truth.CHANNELS, pa.string()),
        campaign_names=pa.array([crm_campaign_id(t) for t in templates], pa.string()),
    )


@dataclass(frozen=True)
class _TouchPlan:
    """What every chunk of touches reads: each customer's window and touch count, and the truth."""

    people: People
    start: np.ndarray  # first day of each customer's window
    days: np.ndarray  # days in each customer's window
    count: np.ndarray  # touches per customer
    situation: np.ndarray
    s_codes: np.ndarray
    s_names: pa.Array
    latent: dict[str, np.ndarray]
    actions: _Actions


def _touch_plan(
    rng: np.random.Generator, people: People, params: pa.Table, as_of_day: int, lifecycle: np.ndarray
) -> _TouchPlan:
    start = np.maximum(people.signup_day, as_of_day - TOUCH_WINDOW_DAYS)
    days = np.clip(as_of_day - start, 0, None)
    rate = np.where(lifecycle, LIFECYCLE_TOUCHES_PER_DAY, BASE_TOUCHES_PER_DAY)
    count = rng.poisson(rate * days)
    s_codes, s_list = truth.string_codes(params.column("situation"))
    latent_columns = ("base_logit", "discount_sensitivity", "expected_order_value")
    latent = {c: params.column(c).to_numpy() for c in latent_columns}
    latent |= {f"affinity_{ch}": params.column(f"affinity_{ch}").to_numpy() for ch in truth.CHANNELS}
    return _TouchPlan(
        people=people,
        start=start,
        days=days,
        count=count,
        situation=params.column("situation").to_numpy(zero_copy_only=False),
        s_codes=s_codes,
        s_names=pa.array(s_list, pa.string()),
        latent=latent,
        actions=_actions(),
    )


def _logged_actions(
    rng: np.random.Generator, plan: _TouchPlan, lo: int, hi: int, local: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each touch's action index and its propensity under the logging policy. The policy depends on the
    customer only: one row of probabilities per customer, and one inverse-CDF lookup per touch (row
    r's CDF is shifted by r to search them all at once)."""
    k = plan.actions.k
    people = plan.people
    probs = logging_policy_probs(plan.situation[lo:hi], people.preferred[lo:hi], people.consent[lo:hi])
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    shifted = (cdf + np.arange(hi - lo)[:, None]).ravel()
    flat = np.searchsorted(shifted, local + rng.random(len(local)) * (1 - 1e-12), side="right")
    choice = np.minimum(flat - local * k, k - 1)
    return choice, probs.ravel()[local * k + choice]


def _touch_chunk(rng: np.random.Generator, plan: _TouchPlan, lo: int, hi: int, first_id: int) -> pa.Table:
    """The touches of customers lo..hi-1, numbered from first_id."""
    acts = plan.actions
    local = np.repeat(np.arange(hi - lo), plan.count[lo:hi])  # chunk-local customer of each touch
    t_cust = lo + local
    m = len(t_cust)
    span_us = plan.days[t_cust] * DAY_US - 3600 * US
    ts = plan.start[t_cust] * DAY_US + (rng.random(m) * span_us).astype(np.int64)
    ts = ts[np.lexsort((ts, local))]  # touches are grouped by customer already; sort each by time
    choice, propensity = _logged_actions(rng, plan, lo, hi, local)
    rows: dict[str, Any] = {c: v[t_cust] for c, v in plan.latent.items()}
    rows["situation"] = pa.DictionaryArray.from_arrays(
        pa.array(plan.s_codes[t_cust], pa.int32()), plan.s_names
    )
    template_code = pa.array(acts.template_of[choice])
    template = pa.DictionaryArray.from_arrays(template_code, acts.template_names)
    conv_p, rev_mean = truth.expected_reward(rows, template, acts.discs[choice])
    converted = rng.random(m) < conv_p
    per_conv = np.divide(rev_mean, conv_p, out=np.zeros(m), where=conv_p > 0)
    sigma = 0.5
    revenue = np.where(converted, per_conv * rng.lognormal(-(sigma**2) / 2, sigma, m), 0.0)
    return pa.table(
        {
            "touch_id": ids("T", np.arange(first_id, first_id + m), 9),
            "customer_id": plan.people.customer_id.take(pa.array(t_cust)),
            "campaign_id": pa.DictionaryArray.from_arrays(template_code, acts.campaign_names),
            "touched_at": pa.array(ts, pa.timestamp("us")),
            "template_id": template,
            "channel": pa.DictionaryArray.from_arrays(pa.array(acts.channel_of[choice]), acts.channel_names),
            "discount_pct": pa.array(acts.discs[choice], pa.float64()),
            "propensity": pa.array(propensity, pa.float64()),
            "converted_14d": pa.array(converted),
            "revenue_90d": pa.array(np.round(revenue, 2), pa.float64()),
        }
    )


def make_touches(
    rng: np.random.Generator, people: People, params: pa.Table, as_of_day: int, lifecycle: np.ndarray
) -> pa.Table:
    """The campaign history: touches per customer (Poisson, see the rates above), each action drawn
    from the logging policy with its exact propensity, outcomes drawn from the truth."""
    plan = _touch_plan(rng, people, params, as_of_day, lifecycle)
    n = len(people.signup_day)
    parts: list[pa.Table] = []
    first_id = 1
    for lo in range(0, n, CUSTOMER_CHUNK):
        hi = min(lo + CUSTOMER_CHUNK, n)
        parts.append(_touch_chunk(rng, plan, lo, hi, first_id))
        first_id += parts[-1].num_rows
    return pa.concat_tables(parts)
