"""The fixed text of the LLM prompts: what every prompt says whatever the customer (the templates'
own sentences under agent/prompts/nba/, the goal and channel wording filled into them). It lives in
core so the message checks can refuse a draft that repeats it without depending on the agent."""

from __future__ import annotations

import re
from functools import cache

from core.reference import PROMPTS_DIR

GOAL_TEXT = {
    "90d_clv": "maximise 90-day customer lifetime value: a discount costs margin, offer one only when it is "
    "likely to pay for itself.",
    "engagement": "maximise reach and engagement: prefer helpful content and no discount.",
}
CHANNEL_STYLE = (
    "Email: subject under 60 characters, message under 80 words. SMS and push: one short sentence."
)
VALUE_NAMES = {"90d_clv": "revenue over 90 days", "engagement": "conversion probability"}

# jinja comments, tags and expressions, and the `{first_name}` placeholder: where the fixed text breaks
_TEMPLATE_PARTS_RE = re.compile(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}|\{\w+\}", re.S)


@cache
def fixed_prompt_text(name: str = "nba") -> tuple[str, ...]:
    """Every run of fixed text a prompt version can show, split where a template fills in a value (so
    no run spans what differs between customers), with the goal, channel and value wording."""
    parts: list[str] = [*GOAL_TEXT.values(), CHANNEL_STYLE, *VALUE_NAMES.values()]
    root = PROMPTS_DIR / name
    for path in sorted(root.glob("*/*.j2")) if root.exists() else []:
        parts += _TEMPLATE_PARTS_RE.split(path.read_text(encoding="utf-8"))
    return tuple(p for p in (p.strip() for p in parts) if p)
