"""Reference data: the dbt seeds (action bank, templates, channel limits, ban list) as typed objects.

The CSV files under warehouse/dbt/seeds are the one source of truth: dbt loads them into the
warehouse for SQL, and this module reads the same files for Python, so guardrails and tests do not
need a warehouse to know the rules.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from agent.contracts import ActionSpec, BannedTerm, ChannelLimit, MessageTemplate

REPO_ROOT = Path(__file__).resolve().parent.parent
SEEDS_DIR = REPO_ROOT / "warehouse" / "dbt" / "seeds"


def _rows(name: str, seeds_dir: Path) -> list[dict[str, str]]:
    with open(seeds_dir / f"{name}.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@dataclass(frozen=True)
class ReferenceData:
    actions: tuple[ActionSpec, ...]
    templates: dict[str, MessageTemplate]
    channel_limits: dict[str, ChannelLimit]
    banned_terms: tuple[BannedTerm, ...]

    def actions_for(self, segment: str) -> list[ActionSpec]:
        return [a for a in self.actions if a.segment == segment]

    def action(self, segment: str, template_id: str) -> ActionSpec | None:
        for a in self.actions:
            if a.segment == segment and a.template_id == template_id:
                return a
        return None


@lru_cache(maxsize=4)
def load_reference(seeds_dir: Path = SEEDS_DIR) -> ReferenceData:
    actions = tuple(ActionSpec.model_validate(r) for r in _rows("action_bank", seeds_dir))
    templates = {}
    for r in _rows("message_templates", seeds_dir):
        r["subject"] = r["subject"] or None  # type: ignore[assignment]
        t = MessageTemplate.model_validate(r)
        templates[t.template_id] = t
    limits = {r["channel"]: ChannelLimit.model_validate(r) for r in _rows("channel_limits", seeds_dir)}
    banned = tuple(BannedTerm.model_validate(r) for r in _rows("banned_terms", seeds_dir))
    missing = {a.template_id for a in actions} - set(templates)
    if missing:
        raise ValueError(
            f"action_bank.csv names templates missing from message_templates.csv: {sorted(missing)}"
        )
    return ReferenceData(actions=actions, templates=templates, channel_limits=limits, banned_terms=banned)
