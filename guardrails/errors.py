"""Errors raised by the guardrail layer: one base class, subclasses that carry their fields.

A guardrail never raises because a policy misbehaved (that is a fallback, recorded in the
decision); these errors are for reference-data mistakes a person has to fix: an action bank that
names a template that does not exist, a template that does not render or does not pass the checks.
"""

from __future__ import annotations

from core.errors import ReferenceConfigError, TemplateRenderError

__all__ = [
    "ChannelMismatchError",
    "MissingChannelLimitError",
    "ReferenceConfigError",
    "TemplateCheckError",
    "TemplateRenderError",
    "UnknownTemplateError",
]


class UnknownTemplateError(ReferenceConfigError):
    def __init__(self, template_id: str, segment: str | None = None) -> None:
        self.template_id, self.segment = template_id, segment
        where = f" (action bank, segment {segment})" if segment else ""
        super().__init__(f"template {template_id!r}{where} is not in message_templates.csv")


class ChannelMismatchError(ReferenceConfigError):
    def __init__(self, template_id: str, bank_channel: str, template_channel: str) -> None:
        self.template_id, self.bank_channel, self.template_channel = (
            template_id,
            bank_channel,
            template_channel,
        )
        super().__init__(
            f"template {template_id!r} is banked on {bank_channel} but written for {template_channel}"
        )


class MissingChannelLimitError(ReferenceConfigError):
    def __init__(self, channel: str) -> None:
        self.channel = channel
        super().__init__(f"channel {channel!r} has no row in channel_limits.csv")


class TemplateCheckError(ReferenceConfigError):
    """An approved template, rendered, fails the message checks: the fallback itself would be unsafe."""

    def __init__(self, template_id: str, failures: list[str]) -> None:
        self.template_id, self.failures = template_id, failures
        super().__init__(f"approved template {template_id!r} fails message checks: {', '.join(failures)}")
