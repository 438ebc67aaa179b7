"""The eval command's settings: the shared run settings (core.config.RunConfig) plus what to
compare, on how many customers, with which seed. `mode` is the candidate policy here."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from core.config import RunConfig, prompt_versions
from core.contracts import Mode
from core.policy_kinds import kinds

IN_PLACE = "in_place"  # the baseline by default: what decides for everyone today


class EvalSettings(RunConfig):
    """`nba-eval` / `make eval`."""

    mode: Mode = "llm"  # the candidate: `make eval` asks "is the LLM better than the rules?"
    # in_place: the policy in place (warehouse.policy_in_place), else rules, random, learned, or a
    # prompt version (v1, ...) of the LLM
    baseline: str = IN_PLACE
    sample: Annotated[int, Field(ge=1)] | Literal["all"] = "all"
    seed: int = 7
    n_bootstrap: int = Field(default=1000, ge=100, le=100_000)
    output: Literal["table", "json"] = "table"  # json: the report on stdout, nothing else there
    fail_if_worse: bool = (
        False  # exit 1 unless the candidate is shown at least as good (EvalReport.not_worse)
    )

    @field_validator("sample", mode="before")
    @classmethod
    def _sample(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip().lower() == "all":
            return "all"
        try:
            n = int(v)
        except (TypeError, ValueError):
            raise ValueError("must be a whole number >= 1 or 'all'") from None
        if n < 1 or n != v and not isinstance(v, str):
            raise ValueError("must be a whole number >= 1 or 'all'")
        return n

    @field_validator("baseline")
    @classmethod
    def _baseline(cls, v: str) -> str:
        valid = [IN_PLACE, *(k.name for k in kinds() if k.baseline), *prompt_versions()]
        if v not in valid:
            raise ValueError(f"must be one of {', '.join(valid)}")
        return v

    @property
    def sample_size(self) -> int | None:
        return None if self.sample == "all" else int(self.sample)
