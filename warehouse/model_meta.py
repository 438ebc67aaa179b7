"""What the dbt project declares about its models' columns and its exposures, read from the YAML
files under warehouse/dbt/models (the source of truth; no dbt parse needed, so the BI export and the
tests can ask without a manifest).

Personal-data convention (documented in models/docs/segments.md, docs block `pii_convention`):
a column's `config.meta.contains_pii: true` marks data that identifies or contacts a person,
`config.meta.free_text: true` text a customer wrote. An exposure's `config.meta.allowed_pii` /
`allowed_free_text` list the tagged columns it may receive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # no stubs installed; safe_load only

from warehouse import paths


@dataclass(frozen=True)
class Column:
    name: str
    description: str
    contains_pii: bool
    free_text: bool

    @property
    def personal(self) -> bool:
        """Left out of anything that must carry no personal data."""
        return self.contains_pii or self.free_text


@dataclass(frozen=True)
class Exposure:
    name: str
    depends_on: tuple[str, ...]
    allowed_pii: frozenset[str] = field(default_factory=frozenset)
    allowed_free_text: frozenset[str] = field(default_factory=frozenset)


def _meta(entry: dict[str, Any]) -> dict[str, Any]:
    return {**(entry.get("meta") or {}), **((entry.get("config") or {}).get("meta") or {})}


def _documents(models_dir: Path) -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text(encoding="utf-8")) or {} for p in sorted(models_dir.rglob("*.yml"))]


@lru_cache(maxsize=4)
def _load(models_dir: Path) -> tuple[dict[str, dict[str, Column]], dict[str, str], dict[str, Exposure]]:
    columns: dict[str, dict[str, Column]] = {}
    descriptions: dict[str, str] = {}
    exposures: dict[str, Exposure] = {}
    for doc in _documents(models_dir):
        for model in doc.get("models") or []:
            descriptions[model["name"]] = (model.get("description") or "").strip()
            columns[model["name"]] = {
                c["name"]: Column(
                    name=c["name"],
                    description=(c.get("description") or "").strip(),
                    contains_pii=bool(_meta(c).get("contains_pii")),
                    free_text=bool(_meta(c).get("free_text")),
                )
                for c in model.get("columns") or []
            }
        for exp in doc.get("exposures") or []:
            meta = _meta(exp)
            exposures[exp["name"]] = Exposure(
                name=exp["name"],
                depends_on=tuple(exp.get("depends_on") or ()),
                allowed_pii=frozenset(meta.get("allowed_pii") or ()),
                allowed_free_text=frozenset(meta.get("allowed_free_text") or ()),
            )
    return columns, descriptions, exposures


def model_columns(model: str, models_dir: Path | None = None) -> dict[str, Column]:
    """The declared columns of a model, by name (empty if the model declares none)."""
    return dict(_load(models_dir or paths.DBT_DIR / "models")[0].get(model, {}))


def model_descriptions(models_dir: Path | None = None) -> dict[str, str]:
    return dict(_load(models_dir or paths.DBT_DIR / "models")[1])


def exposures(models_dir: Path | None = None) -> dict[str, Exposure]:
    return dict(_load(models_dir or paths.DBT_DIR / "models")[2])
