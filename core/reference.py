"""Reference data: the dbt seeds (action bank, templates, channel limits, ban list) as typed objects.

The CSV files under warehouse/dbt/seeds are the one source of truth: dbt loads them into the
warehouse for SQL, and this module reads the same files for Python, so guardrails and tests do not
need a warehouse to know the rules. The warehouse's own customer first names (for the "no other
customer's name" message check) are added by the pipeline with `with_customer_names`.

A ReferenceData object is hashed by identity and its derived lookups are computed once per object,
so any module can memoise work per reference object with functools.cache.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from core.contracts import ActionSpec, BannedTerm, ChannelLimit, MessageTemplate
from core.errors import UserError

M = TypeVar("M", bound=BaseModel)

# The folder that holds the project's packages: the clone, or site-packages once the wheel is
# installed. The data files below ship inside those packages (pyproject's package-data), so both
# read the same files; nothing is ever written here.
PACKAGES_ROOT = Path(__file__).resolve().parent.parent
SEEDS_DIR = PACKAGES_ROOT / "warehouse" / "dbt" / "seeds"
PROMPTS_DIR = PACKAGES_ROOT / "agent" / "prompts"


def _rows(name: str, seeds_dir: Path) -> list[tuple[int, dict[str, str]]]:
    """(line, row) for each row of one seed file; the line is where the row ends (a quoted value may
    span lines)."""
    path = seeds_dir / f"{name}.csv"
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            return [(reader.line_num, row) for row in reader]
    except FileNotFoundError:
        raise UserError(f"no seed file {path}: restore it (git checkout -- {path})") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 ({exc.reason} at byte {exc.start}): save it as UTF-8") from None


def _parsed(model: type[M], name: str, seeds_dir: Path) -> list[M]:
    """The rows of one seed file as `model`s; a bad value is one line naming the file, the line, the
    column and the problem (a UserError: exit 2), not a traceback."""
    out = []
    for line, row in _rows(name, seeds_dir):
        try:
            out.append(model.model_validate(row))
        except ValidationError as exc:
            err = exc.errors()[0]
            column = ".".join(str(part) for part in err["loc"]) or "row"
            raise UserError(
                f"{seeds_dir / name}.csv line {line}: {column}: {err['msg']} (got {err.get('input')!r}); "
                "fix the row, then run `make build` so the warehouse has the same reference data"
            ) from None
    return out


@dataclass(frozen=True, eq=False)
class ReferenceData:
    actions: tuple[ActionSpec, ...]
    templates: dict[str, MessageTemplate]
    channel_limits: dict[str, ChannelLimit]
    banned_terms: tuple[BannedTerm, ...]
    # first names of the warehouse's customers: a message naming one of them (other than the
    # recipient) names another customer
    customer_names: frozenset[str] = frozenset()

    @cached_property
    def _by_segment(self) -> dict[str, list[ActionSpec]]:
        out: dict[str, list[ActionSpec]] = {}
        for a in self.actions:
            out.setdefault(a.segment, []).append(a)
        return out

    @cached_property
    def bank(self) -> dict[tuple[str, str], ActionSpec]:
        """(segment, template_id) -> action, for banked templates that exist."""
        return {(a.segment, a.template_id): a for a in self.actions if a.template_id in self.templates}

    def actions_for(self, segment: str) -> list[ActionSpec]:
        return list(self._by_segment.get(segment, ()))

    def action(self, segment: str, template_id: str) -> ActionSpec | None:
        for a in self._by_segment.get(segment, ()):
            if a.template_id == template_id:
                return a
        return None

    @cached_property
    def _bank_channels(self) -> dict[str, frozenset[str]]:
        return {seg: frozenset(a.channel for a in acts) for seg, acts in self._by_segment.items()}

    def bank_channels(self, segment: str) -> frozenset[str]:
        """The channels a segment's action bank has a template on."""
        return self._bank_channels.get(segment, frozenset())

    def with_customer_names(self, names: Iterable[str]) -> ReferenceData:
        """The same reference data, knowing these customer first names."""
        return dataclasses.replace(self, customer_names=frozenset(n for n in names if n and n.strip()))


@lru_cache(maxsize=4)
def load_reference(seeds_dir: Path = SEEDS_DIR) -> ReferenceData:
    actions = tuple(_parsed(ActionSpec, "action_bank", seeds_dir))
    templates = {t.template_id: t for t in _parsed(MessageTemplate, "message_templates", seeds_dir)}
    limits: dict[str, ChannelLimit] = {
        x.channel: x for x in _parsed(ChannelLimit, "channel_limits", seeds_dir)
    }
    banned = tuple(_parsed(BannedTerm, "banned_terms", seeds_dir))
    missing = {a.template_id for a in actions} - set(templates)
    if missing:
        raise UserError(
            f"action_bank.csv names templates missing from message_templates.csv: {sorted(missing)}; "
            "add them there or take them out of the action bank"
        )
    return ReferenceData(actions=actions, templates=templates, channel_limits=limits, banned_terms=banned)
