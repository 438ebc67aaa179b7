"""Step 1: each eligibility check with an example that would pass straight through without it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from guardrail_factories import AS_OF, make_ctx

from core.contracts import ContactEvent, GuardrailSettings
from guardrails.checks import ELIGIBILITY
from guardrails.eligibility import check_eligibility


def ev(
    channel: str, at: datetime, destination: str = "hubspot", customer_id: str = "c-000001"
) -> ContactEvent:
    return ContactEvent(customer_id=customer_id, channel=channel, destination=destination, contacted_at=at)


def elig(ctx, history=(), *, as_of=AS_OF, settings=None, ref):
    settings = settings or GuardrailSettings(global_holdout_pct=0, segment_holdout_pct=0)
    return check_eligibility(ctx, list(history), as_of=as_of, settings=settings, ref=ref)


def test_baseline_all_channels_allowed(ref):
    e = elig(make_ctx(), ref=ref)
    assert e.status == "send" and e.arm == "treatment"
    assert e.allowed_channels == ["email", "sms", "push"]
    assert [c.name for c in e.checks] == [
        "holdout",
        "global_suppression",
        "consent",
        "suppression_window",
        "frequency_cap",
        "action_bank_channels",
        "quiet_hours",
    ]
    assert tuple(c.name for c in e.checks) == ELIGIBILITY.names()  # the registry's order is the run's


def test_global_suppression(ref):
    e = elig(make_ctx(globally_suppressed=True), ref=ref)
    assert e.status == "suppressed" and "globally_suppressed" in e.reasons and e.allowed_channels == []


def test_consent_per_channel(ref):
    e = elig(make_ctx(consent={"email": False, "sms": True, "push": False}), ref=ref)
    assert e.status == "send" and e.allowed_channels == ["sms"]
    none = elig(make_ctx(consent={"email": False, "sms": False, "push": False}), ref=ref)
    assert none.status == "suppressed" and none.reasons == ["no_consented_channel"]


def test_suppression_window_across_destinations_and_channels(ref):
    ctx = make_ctx()
    inside = elig(ctx, [ev("push", AS_OF - timedelta(hours=23), destination="webhook")], ref=ref)
    assert inside.status == "suppressed" and "suppression_window" in inside.reasons
    outside = elig(ctx, [ev("push", AS_OF - timedelta(hours=25), destination="webhook")], ref=ref)
    assert outside.status == "send"
    # a future ledger row (a re-run for an earlier as_of) inside the window also blocks
    assert elig(ctx, [ev("sms", AS_OF + timedelta(hours=2))], ref=ref).status == "suppressed"
    # other customers' rows do not
    assert elig(ctx, [ev("sms", AS_OF - timedelta(hours=1), customer_id="other")], ref=ref).status == "send"
    # the context's own last_contact counts too
    lc = make_ctx(last_contact={"email": AS_OF - timedelta(hours=3)})
    assert elig(lc, ref=ref).status == "suppressed"
    # a longer window catches the 25h-old contact; zero disables the window
    s48 = GuardrailSettings(suppress_hours=48, global_holdout_pct=0, segment_holdout_pct=0)
    assert elig(ctx, [ev("push", AS_OF - timedelta(hours=25))], settings=s48, ref=ref).status == "suppressed"
    s0 = GuardrailSettings(suppress_hours=0, global_holdout_pct=0, segment_holdout_pct=0)
    assert elig(ctx, [ev("push", AS_OF - timedelta(minutes=5))], settings=s0, ref=ref).status == "send"


def test_naive_ledger_times_are_utc(ref):
    naive = (AS_OF - timedelta(hours=2)).replace(tzinfo=None)
    assert elig(make_ctx(), [ev("email", naive)], ref=ref).status == "suppressed"


def test_frequency_cap_per_channel(ref):
    ctx = make_ctx()
    # sms allows 1 per 7 days: one sms 3 days ago closes sms, email and push stay open
    e = elig(ctx, [ev("sms", AS_OF - timedelta(days=3))], ref=ref)
    assert e.status == "send" and e.allowed_channels == ["email", "push"]
    # email allows 2: two emails this week close email
    two = [
        ev("email", AS_OF - timedelta(days=2)),
        ev("email", AS_OF - timedelta(days=5), destination="salesforce"),
    ]
    assert elig(ctx, two, ref=ref).allowed_channels == ["sms", "push"]
    # 8 days ago no longer counts
    old = [ev("email", AS_OF - timedelta(days=2)), ev("email", AS_OF - timedelta(days=8))]
    assert "email" in elig(ctx, old, ref=ref).allowed_channels
    # every consented channel capped -> suppressed
    sms_only = make_ctx(consent={"email": False, "sms": True, "push": False})
    capped = elig(sms_only, [ev("sms", AS_OF - timedelta(days=3))], ref=ref)
    assert capped.status == "suppressed" and capped.reasons == ["frequency_cap"]


def test_frequency_cap_counts_last_contact_once(ref):
    t = AS_OF - timedelta(days=3)
    ctx = make_ctx(last_contact={"email": t})
    # the same contact in the ledger and in last_contact is one email, not two
    assert "email" in elig(ctx, [ev("email", t)], ref=ref).allowed_channels


@pytest.mark.parametrize(
    ("tz", "as_of", "expected"),
    [
        # 23:00 EDT -> email/push reopen 08:00 local (12:00 UTC), before sms (09:00)
        ("America/New_York", datetime(2024, 5, 1, 3, 0, tzinfo=UTC), datetime(2024, 5, 1, 12, 0, tzinfo=UTC)),
        # 23:00 JST -> 08:00 JST next day
        ("Asia/Tokyo", datetime(2024, 5, 1, 14, 0, tzinfo=UTC), datetime(2024, 5, 1, 23, 0, tzinfo=UTC)),
        # 01:30 IST (+05:30) -> 08:00 IST same day
        ("Asia/Kolkata", datetime(2024, 5, 1, 20, 0, tzinfo=UTC), datetime(2024, 5, 2, 2, 30, tzinfo=UTC)),
        # 23:00 CET on the night clocks go forward -> 08:00 CEST = 06:00 UTC
        ("Europe/Berlin", datetime(2024, 3, 30, 22, 0, tzinfo=UTC), datetime(2024, 3, 31, 6, 0, tzinfo=UTC)),
        # 22:30 NZST -> 08:00 NZST
        (
            "Pacific/Auckland",
            datetime(2024, 6, 1, 10, 30, tzinfo=UTC),
            datetime(2024, 6, 1, 20, 0, tzinfo=UTC),
        ),
    ],
)
def test_quiet_hours_defer_until_across_timezones(ref, tz, as_of, expected):
    e = elig(make_ctx(timezone=tz), as_of=as_of, ref=ref)
    assert e.status == "deferred" and "quiet_hours" in e.reasons
    assert e.defer_until == expected
    assert e.allowed_channels == ["email", "sms", "push"]  # deferred, not dropped


def test_quiet_hours_per_channel(ref):
    # 21:30 in London (BST): sms is quiet (21-9), email and push are not (22-8)
    as_of = datetime(2024, 5, 1, 20, 30, tzinfo=UTC)
    e = elig(make_ctx(timezone="Europe/London"), as_of=as_of, ref=ref)
    assert e.status == "send"
    assert e.channel_defer_until == {"sms": datetime(2024, 5, 2, 8, 0, tzinfo=UTC)}
    sms_only = elig(
        make_ctx(timezone="Europe/London", consent={"email": False, "sms": True, "push": False}),
        as_of=as_of,
        ref=ref,
    )
    assert sms_only.status == "deferred" and sms_only.defer_until == datetime(2024, 5, 2, 8, 0, tzinfo=UTC)


def test_quiet_hours_can_be_disabled_and_unknown_timezone_is_utc(ref):
    night = datetime(2024, 5, 1, 23, 30, tzinfo=UTC)
    off = GuardrailSettings(enforce_quiet_hours=False, global_holdout_pct=0, segment_holdout_pct=0)
    assert elig(make_ctx(), as_of=night, settings=off, ref=ref).status == "send"
    e = elig(make_ctx(timezone="Mars/Olympus"), as_of=night, ref=ref)
    assert e.status == "deferred" and "timezone_unknown_utc" in e.reasons


def test_holdout_arm_has_holdout_status_unless_suppressed(ref):
    everyone = GuardrailSettings(global_holdout_pct=100)
    e = elig(make_ctx(), settings=everyone, ref=ref)
    assert e.status == "holdout" and e.arm == "holdout" and "holdout_global" in e.reasons
    seg = GuardrailSettings(global_holdout_pct=0, segment_holdout_pct=100)
    assert elig(make_ctx(), settings=seg, ref=ref).reasons == ["holdout_segment"]
    # the holdout arm holds only customers who would otherwise have been contacted
    s = elig(make_ctx(globally_suppressed=True), settings=everyone, ref=ref)
    assert s.status == "suppressed" and s.arm == "holdout"
    assert not e.needs_proposal and not s.needs_proposal
