"""Rendering approved message templates: the one renderer the rules and learned policies use to
write copy and the guardrails use to re-render a failed draft.

Templates are jinja2 with `first_name` and `discount_pct`, rendered in jinja's sandbox with
StrictUndefined, so a template cannot reach into Python and a missing variable fails and names
itself. Rendering is memoised: the same few hundred (template, name, discount) messages recur."""

from __future__ import annotations

import math
from functools import lru_cache

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from core.contracts import MessageTemplate
from core.errors import TemplateRenderError

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


@lru_cache(maxsize=256)
def _compiled(source: str) -> Template:
    return _ENV.from_string(source)


@lru_cache(maxsize=65536)
def _render(
    template_id: str, subject: str | None, body: str, first_name: str, discount: float
) -> tuple[str | None, str]:
    try:
        subj = _compiled(subject).render(first_name=first_name, discount_pct=discount) if subject else None
        return subj, _compiled(body).render(first_name=first_name, discount_pct=discount)
    except TemplateError as exc:
        raise TemplateRenderError(template_id, f"{type(exc).__name__}: {exc}") from None


def render_template(
    template: MessageTemplate, first_name: str, discount_pct: float
) -> tuple[str | None, str]:
    """Render an approved template (sandboxed, StrictUndefined) -> (subject, body)."""
    if not math.isfinite(discount_pct):
        raise TemplateRenderError(template.template_id, f"discount_pct is not finite: {discount_pct!r}")
    return _render(template.template_id, template.subject, template.body, first_name, float(discount_pct))
