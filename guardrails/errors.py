"""Errors raised by the guardrail layer: one base class, subclasses that carry their fields.

A guardrail never raises because an LLM misbehaved (that is a fallback, recorded in the decision);
these errors are for configuration mistakes a person has to fix: a bad setting, an action bank that
names a template that does not exist, a template that does not render or does not pass the checks.
"""

from __future__ import annotations


class GuardrailError(Exception):
    """Base class of every error the guardrails raise."""


class SettingsError(GuardrailError, ValueError):
    def __init__(self, variable: str, value: str, detail: str) -> None:
        self.variable, self.value, self.detail = variable, value, detail
        super().__init__(f"{variable}={value!r}: {detail}")


class UnknownSegmentError(GuardrailError, ValueError):
    def __init__(self, segment: str, valid: tuple[str, ...]) -> None:
        self.segment, self.valid = segment, valid
        super().__init__(f"unknown segment {segment!r}; valid segments: {', '.join(valid)}")


class UnknownGoalError(GuardrailError, ValueError):
    def __init__(self, goal: str, valid: tuple[str, ...]) -> None:
        self.goal, self.valid = goal, valid
        super().__init__(f"unknown goal {goal!r}; valid goals: {', '.join(valid)}")


class ReferenceConfigError(GuardrailError):
    """The reference data (action bank, templates, channel limits) is inconsistent."""


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


class TemplateRenderError(ReferenceConfigError):
    def __init__(self, template_id: str, detail: str) -> None:
        self.template_id, self.detail = template_id, detail
        super().__init__(f"template {template_id!r} does not render: {detail}")


class TemplateCheckError(ReferenceConfigError):
    """An approved template, rendered, fails the message checks: the fallback itself would be unsafe."""

    def __init__(self, template_id: str, failures: list[str]) -> None:
        self.template_id, self.failures = template_id, failures
        super().__init__(f"approved template {template_id!r} fails message checks: {', '.join(failures)}")
