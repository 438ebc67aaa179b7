"""Versioned prompt templates: agent/prompts/<name>/<version>/{system,user}.j2 (beside this module, so
they ship in the wheel), rendered sandboxed.

StrictUndefined makes a missing variable fail loudly and name itself; the sandbox keeps a template
from reaching into Python. A template never sees the CustomerContext: only its bucketed, masked facts
(agent/facts.py), so no prompt version can put a customer's name, country or exact figures in front of
a model. Customer free text reaches a prompt only through `tojson` (quoted data).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateNotFound, UndefinedError, meta
from jinja2.sandbox import SandboxedEnvironment

from agent.errors import PromptError
from agent.facts import Detail, facts, name_keys
from core.contracts import CustomerContext
from core.prompt_text import CHANNEL_STYLE, GOAL_TEXT, VALUE_NAMES
from core.reference import PROMPTS_DIR, ReferenceData

# One ranked action offered to the LLM: (template_id, channel, discount_pct), best first.
Choice = tuple[str, str, float]


@dataclass(frozen=True)
class RenderedPrompt:
    """A rendered prompt. `choices` are the ranked actions it offers when the version is written on
    top of the learned ranking (its templates use `ranking`): the answer then names one of them by
    its number, and the response model allows only those numbers (agent/llm.py)."""

    version: str
    system: str
    user: str
    choices: tuple[Choice, ...] = ()
    # the allowed actions the prompt lists: (template_id, channel, the discount it may carry, within
    # the run's cap); the response model allows exactly these (agent/llm.py)
    offered: tuple[Choice, ...] = ()

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user}]


def available_versions(name: str = "nba") -> list[str]:
    root = PROMPTS_DIR / name
    return sorted(p.name for p in root.iterdir() if (p / "system.j2").exists()) if root.exists() else []


@lru_cache(maxsize=16)
def _env(name: str, version: str) -> SandboxedEnvironment:
    folder = PROMPTS_DIR / name / version
    if not (folder / "system.j2").exists():
        raise PromptError(
            f"prompt version {version!r} not found under agent/prompts/{name}/; "
            f"available: {', '.join(available_versions(name)) or 'none'}"
        )
    return SandboxedEnvironment(
        loader=FileSystemLoader(str(folder)),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
    )


@lru_cache(maxsize=16)
def prompt_variables(version: str, name: str = "nba") -> frozenset[str]:
    """The variables a prompt version's templates use (jinja2's own analysis): a version that uses
    `ranking` is written on top of the learned ranking."""
    env = _env(name, version)
    used: set[str] = set()
    for template in ("system.j2", "user.j2"):
        source = env.loader.get_source(env, template)[0]  # type: ignore[union-attr]
        used |= meta.find_undeclared_variables(env.parse(source))
    return frozenset(used)


@lru_cache(maxsize=16)
def _name_keys(ref: ReferenceData) -> frozenset[str]:
    """The warehouse's first names, as the comment mask compares them."""
    return name_keys(ref.customer_names)


def render_prompt(
    ctx: CustomerContext,
    *,
    version: str,
    ref: ReferenceData,
    allowed_channels: Sequence[str],
    goal: str,
    discount_cap: float,
    name: str = "nba",
    ranking: Sequence[dict[str, Any]] = (),
    detail: Detail = "bucketed",
) -> RenderedPrompt:
    actions: list[dict[str, Any]] = [
        {
            "template_id": a.template_id,
            "channel": a.channel,
            "max_discount": min(a.max_discount_pct, discount_cap),
            "description": a.description,
        }
        for a in ref.actions_for(ctx.segment)
        if a.channel in allowed_channels
    ]
    max_discount = max((a["max_discount"] for a in actions), default=0.0)
    variables = {
        "prompt_version": version,
        "goal_text": GOAL_TEXT[goal],
        "max_discount": f"{max_discount:g}",
        "channel_style": CHANNEL_STYLE,
        "facts": facts(ctx, names=_name_keys(ref), detail=detail),
        "allowed_channels": list(allowed_channels),
        "actions": actions,
        "ranking": list(ranking),
        "value_name": VALUE_NAMES.get(goal, VALUE_NAMES["engagement"]),
    }
    env = _env(name, version)
    try:
        system = env.get_template("system.j2").render(**variables).strip()
        user = env.get_template("user.j2").render(**variables).strip()
    except TemplateNotFound as exc:
        raise PromptError(f"agent/prompts/{name}/{version}/ lacks {exc.name}") from exc
    except UndefinedError as exc:
        raise PromptError(f"agent/prompts/{name}/{version}: {exc.message}") from exc
    choices: tuple[Choice, ...] = ()
    if "ranking" in prompt_variables(version, name):
        choices = tuple((r["template_id"], r["channel"], float(r["discount_pct"])) for r in ranking)
    offered = tuple((a["template_id"], a["channel"], float(a["max_discount"])) for a in actions)
    return RenderedPrompt(version=version, system=system, user=user, choices=choices, offered=offered)
