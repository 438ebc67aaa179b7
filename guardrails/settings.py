"""Guardrail settings: read once, at construction; frozen; every field validated."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.contracts import Goal
from guardrails.errors import SettingsError

# field name -> environment variable (the names DESIGN.md uses: GOAL, DISCOUNT_CAP, SUPPRESS_HOURS)
ENV_VARS: dict[str, str] = {
    "goal": "GOAL",
    "discount_cap": "DISCOUNT_CAP",
    "suppress_hours": "SUPPRESS_HOURS",
    "global_holdout_pct": "GLOBAL_HOLDOUT_PCT",
    "segment_holdout_pct": "SEGMENT_HOLDOUT_PCT",
    "holdout_salt": "HOLDOUT_SALT",
    "enforce_quiet_hours": "ENFORCE_QUIET_HOURS",
}


class GuardrailSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    goal: Goal = "90d_clv"
    discount_cap: float = Field(default=5.0, ge=0, le=100)
    suppress_hours: float = Field(default=24, ge=0)
    global_holdout_pct: float = Field(default=5.0, ge=0, le=100)
    segment_holdout_pct: float = Field(default=10.0, ge=0, le=100)
    holdout_salt: str = Field(default="nba-holdout-v1", min_length=1)
    enforce_quiet_hours: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, prefix: str = "") -> GuardrailSettings:
        """Settings from environment variables (`GOAL`, `DISCOUNT_CAP`, ...); an invalid value raises
        SettingsError naming the variable to fix."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field, var in ENV_VARS.items():
            if prefix + var in env:
                values[field] = env[prefix + var]
        try:
            return cls(**values)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else "?"
            var = prefix + ENV_VARS.get(field, field.upper())
            raise SettingsError(var, str(values.get(field, "")), err["msg"]) from None
