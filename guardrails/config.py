"""Startup validation of the reference data the guardrails enforce.

Raises a ReferenceConfigError subclass naming what to fix, so a bad seed fails a run at start-up
rather than turning every decision into `no_action`.
"""

from __future__ import annotations

from core.contracts import CHANNELS
from core.reference import ReferenceData
from core.templates import render_template
from guardrails.errors import (
    ChannelMismatchError,
    MissingChannelLimitError,
    ReferenceConfigError,
    TemplateCheckError,
    UnknownTemplateError,
)
from guardrails.message_checker import get_checker

SAMPLE_NAME = "Olivia"


def validate_reference(ref: ReferenceData) -> None:
    """Every banked template exists, is written for the banked channel, renders at its minimum and
    maximum whole discount, and the rendered copy passes every message check; every channel has limits."""
    for ch in CHANNELS:
        if ch not in ref.channel_limits:
            raise MissingChannelLimitError(ch)
    checker = get_checker(ref)
    for a in ref.actions:
        t = ref.templates.get(a.template_id)
        if t is None:
            raise UnknownTemplateError(a.template_id, a.segment)
        if t.channel != a.channel:
            raise ChannelMismatchError(a.template_id, a.channel, t.channel)
        if a.min_discount_pct > a.max_discount_pct:
            raise ReferenceConfigError(f"{a.segment}/{a.template_id}: min discount above max")
        for d in {int(a.min_discount_pct), int(a.max_discount_pct)}:
            subject, body = render_template(t, SAMPLE_NAME, d)  # TemplateRenderError names the template
            failures = checker.check(a.channel, subject, body, float(d), SAMPLE_NAME)
            if failures:
                raise TemplateCheckError(a.template_id, [c for c, _ in failures])
