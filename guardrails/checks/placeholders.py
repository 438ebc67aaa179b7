"""The draft's placeholders are filled from the warehouse before any message check reads the copy.

An LLM never sees who the customer is (agent/facts.py): it writes `{first_name}` where the name goes.
Filling it here, ahead of the message checks, means the checks judge the exact text that is sent (its
length with the name, the name itself). A placeholder nobody can fill stays in the copy, and the
message checks refuse it (`placeholder`). Filling is what a draft is for, not a fix: the check passes
and says so."""

from __future__ import annotations

import re

from core.contracts import GuardrailCheck
from guardrails.checks.base import ProposalCheck, Vetting, entry
from guardrails.checks.words import Setting

# {first_name}, and the forms a model slips into: {{first_name}}, { first_name }, {FIRST_NAME}
_FIRST_NAME = re.compile(r"\{\{?\s*first_name\s*\}\}?", re.I)


def fill(text: str, first_name: str) -> str:
    return _FIRST_NAME.sub(lambda _m: first_name, text)


class Placeholders(ProposalCheck):
    name = "placeholders"
    label = "placeholders filled"

    def run(self, v: Vetting) -> GuardrailCheck | None:
        subject = fill(v.subject, v.ctx.first_name) if v.subject is not None else None
        message = fill(v.message, v.ctx.first_name)
        if subject == v.subject and message == v.message:
            return None
        v.subject, v.message = subject, message
        return entry(name=self.name, verdict="pass", before=None, after=None, reason="placeholders_filled")

    def explain(self, c: GuardrailCheck, s: Setting) -> str:
        return "the customer's first name filled in from the warehouse"
