"""The run configuration: every setting that shapes a decision has one owner, one default and one
validation, here (the guardrail settings' defaults and bounds are the GuardrailSettings contract's,
referenced, not repeated).

Each command builds its settings object once (a subclass of `RunConfig`: activation's
`ActivateSettings`, the eval's `EvalSettings`) from its command-line flags and `NBA_*` environment
variables (pydantic-settings: prefix `NBA_`, `__` between a section and its field, e.g.
`NBA_DISCOUNT_CAP=7`, `NBA_LLM__TEMPERATURE=0`). A flag wins over the environment. The standard
OpenAI variables (`OPENAI_BASE_URL`, `OPENAI_API_KEY`, `OPENAI_MODEL`) configure the LLM endpoint.
Nothing else in the project reads these variables.

A bad value raises ConfigError with one line that names every way to set it (flag, make variable,
environment variable) and what is allowed.
"""

from __future__ import annotations

import json
import os
import re
import typing
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

import annotated_types
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from core.contracts import Goal, GuardrailSettings, Hours, Mode, Percent, Salt, SegmentChoice
from core.errors import ConfigError
from core.policy_kinds import LLM
from core.reference import PROMPTS_DIR

EMBEDDED_MODEL = "smollm2-135m-instruct"
# The embedded 135M model almost never fixes an answer when asked again, and each reask costs a full
# completion: it falls back to the rules at once. Any configured endpoint gets one reask.
EMBEDDED_REASKS, ENDPOINT_REASKS = 0, 1
# llama-server slots for the embedded model, and the client concurrency that follows them unless set.
# More slots, each with its own KV cache, share each read of the weights: more decisions per second
# (bench/bench_llm_embedded.py; figures in bench/README.md).
EMBEDDED_SLOTS = 8

_G = GuardrailSettings.model_fields
_VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MIN_AS_OF, MAX_AS_OF = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)


def prompt_versions(name: str = "nba") -> list[str]:
    root = PROMPTS_DIR / name
    return sorted(p.name for p in root.iterdir() if (p / "system.j2").exists()) if root.exists() else []


def _prompt_version(v: str) -> str:
    if not _VERSION_RE.fullmatch(v) or ".." in v or (PROMPTS_DIR / "nba" / v / "system.j2").exists() is False:
        raise ValueError(f"must be a folder under agent/prompts/nba/: one of {', '.join(prompt_versions())}")
    return v


def _members(v: Any) -> Any:
    if isinstance(v, str) and v.strip().lower() == "auto":
        return "auto"
    try:
        n = int(str(v).strip())
    except ValueError:
        n = 0
    if not 1 <= n <= 10:
        raise ValueError("must be auto or a whole number of boosters from 1 to 10")
    return n


def _as_of(v: Any) -> Any:
    if isinstance(v, str):
        try:
            v = datetime.fromisoformat(v.strip())
        except ValueError:
            raise ValueError("must be an ISO date or timestamp, e.g. 2026-11-27T14:00Z") from None
    if isinstance(v, datetime):
        v = v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
        if not MIN_AS_OF <= v < MAX_AS_OF:
            raise ValueError("must be between 2000-01-01 and 2100-01-01")
    return v


def _http_url(v: str) -> str:
    parts = urlsplit(v.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host, e.g. https://api.example.com")
    return v.strip()


PromptVersion = Annotated[str, AfterValidator(_prompt_version)]
# a destination's or an endpoint's address: checked when the settings are built, before any run
HttpURL = Annotated[str, AfterValidator(_http_url)]
AsOf = Annotated[datetime, BeforeValidator(_as_of)]


class Section(BaseModel):
    """A settings section (`NBA_<SECTION>__<FIELD>`): frozen, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LLMSettings(Section):
    """The LLM endpoint and client (section NBA_LLM__; endpoint from OPENAI_*)."""

    base_url: HttpURL | None = None  # checked when the settings are built, not met as a connection error
    api_key: SecretStr | None = None
    model: str = EMBEDDED_MODEL
    # auto: JSON_SCHEMA (response_format) for the embedded llama-server, which rejects forced tool
    # calls; TOOLS for any configured endpoint. A llama-server of your own: json_schema.
    instructor_mode: Literal["auto", "tools", "json_schema", "json", "md_json"] = "auto"
    temperature: float = Field(default=0.2, ge=0, le=2, allow_inf_nan=False)
    seed: int = 7
    max_retries: int | None = Field(default=None, ge=0, le=5)  # reasks; None: per endpoint (see reasks)
    timeout_s: float = Field(default=120.0, gt=0, le=3600, allow_inf_nan=False)
    concurrency: int = Field(default=2, ge=1, le=256)  # the embedded model: one request per slot unless set
    slots: int = Field(default=EMBEDDED_SLOTS, ge=1, le=64)  # parallel sequences of the embedded server
    model_path: Path | None = None  # a GGUF to serve instead of the shipped SmolLM2 (served as it is)
    # llama-server's threads; None: chosen when it starts (agent.local_llm.threads_for): one where
    # other work keeps a core busy (ggml's threads wait for each other at every op), else every core
    threads: int | None = Field(default=None, ge=1, le=256)
    # room for the longest answer the response models' length bounds allow (subject 80, message 400
    # and rationale 160 characters, about 220 tokens): a lower limit cuts off answers the bounds allow
    max_tokens: int = Field(default=256, ge=16, le=8192)
    http_retries: int = Field(default=0, ge=0, le=5)
    http_transport: Literal["aiohttp", "httpx"] = "aiohttp"
    cache: bool = True
    # A prompt written on top of the learned ranking (v3) offers the learned policy's own choice as
    # number 1 and, of the next-best actions (at most ranking_top_k in all), only those the model
    # values within ranking_within of number 1: the LLM decides between near-ties, and cannot give
    # away the value the model is sure of (docs/llm.md; how far apart the actions are: bench/README.md).
    ranking_top_k: int = Field(default=3, ge=1, le=10)
    ranking_within: float = Field(default=0.05, ge=0, le=1, allow_inf_nan=False)
    # What a prompt says of the customer (agent/facts.py): bands, so customers in the same situation
    # share one prompt and one answer; or exact figures (one prompt per customer; never a name,
    # country or contact detail either way), to measure what the bands cost.
    prompt_detail: Literal["bucketed", "exact"] = "bucketed"

    @field_validator("model_path")
    @classmethod
    def _gguf(cls, v: Path | None) -> Path | None:
        if v is None:
            return v
        v = v.expanduser()
        if not v.is_file():
            raise ValueError(f"no file at {v}: point it at a .gguf model file")
        with v.open("rb") as fh:
            if fh.read(4) != b"GGUF":
                raise ValueError(f"{v} is not a GGUF file (llama.cpp serves GGUF models only)")
        return v

    @model_validator(mode="after")
    def _one_request_per_slot(self) -> LLMSettings:
        if self.embedded and "concurrency" not in self.model_fields_set:
            object.__setattr__(self, "concurrency", self.slots)  # a request per llama-server slot
        return self

    @property
    def embedded(self) -> bool:
        """No endpoint and no key configured: the run serves the embedded local model itself."""
        return self.base_url is None and self.api_key is None

    @property
    def resolved_instructor_mode(self) -> str:
        """The instructor mode in force: `instructor_mode`, with auto resolved for the server ("mode"
        alone is the policy's, RunConfig.mode)."""
        if self.instructor_mode != "auto":
            return self.instructor_mode
        return "json_schema" if self.embedded else "tools"

    @property
    def reasks(self) -> int:
        if self.max_retries is not None:
            return self.max_retries
        return EMBEDDED_REASKS if self.embedded else ENDPOINT_REASKS

    def cache_fingerprint(self) -> dict[str, object]:
        """Settings that change what the model returns (never the key)."""
        return {
            "model": self.model,
            "mode": self.resolved_instructor_mode,  # the key cached decisions were stored under
            "model_path": str(self.model_path) if self.model_path else None,
            "temperature": self.temperature,
            "seed": self.seed,
            "max_retries": self.reasks,
            "max_tokens": self.max_tokens,
        }


class LearnedSettings(Section):
    """The learned policy (section NBA_LEARNED__): which learner, when it leaves the incumbent's
    action, and how it explores."""

    # dr: the DR-learner, chosen over gbm on the truth across generated worlds and both goals
    # (bench/README.md, "Across worlds")
    learner: Literal["gbm", "dr", "vw"] = "dr"
    # thompson: explore by the ensemble members' votes (where the model is unsure); epsilon and
    # softmax: by the values alone
    exploration: Literal["thompson", "epsilon", "softmax"] = "thompson"
    thompson_share: float = Field(default=0.1, ge=0, lt=1, allow_inf_nan=False)  # mass that follows the votes
    floor: float = Field(default=0.005, gt=0, lt=0.5, allow_inf_nan=False)  # spread over every allowed action
    epsilon: float = Field(default=0.05, gt=0, lt=1, allow_inf_nan=False)  # share of uniform exploration
    temperature: float = Field(
        default=0.1, gt=0, le=10, allow_inf_nan=False
    )  # softmax, relative to the best value
    seed: int = 0  # the exploration draws: same seed + same customer = same draw
    # safe improvement: leave the rules' action only for an action whose gain over it has a one-sided
    # lower confidence bound above zero at this level, the bound from the ensemble members' spread
    # (bootstraps of the customers); a model's winners among rarely logged actions are often noise.
    # 0.6: chosen across worlds and goals, checked on a world generated after (bench/README.md)
    switch_confidence: float = Field(default=0.6, gt=0.5, lt=1, allow_inf_nan=False)
    # the level per goal and segment where it differs from switch_confidence (JSON in the variable,
    # e.g. {"90d_clv": {"high_value_lapse_risk": 0.95}}). On revenue, high-value lapse-risk customers
    # gained from the stricter level on each of four generated worlds held out in turn, and every
    # other segment and goal lost from it (bench/README.md, "A switch level per segment")
    segment_switch_confidence: dict[
        Goal, dict[str, Annotated[float, Field(gt=0.5, lt=1, allow_inf_nan=False)]]
    ] = {"90d_clv": {"high_value_lapse_risk": 0.95}}

    def switch_level(self, goal: Goal, segment: str | None) -> float:
        """The safe switch's confidence level for a customer of `segment` under `goal`."""
        return self.segment_switch_confidence.get(goal, {}).get(segment or "", self.switch_confidence)

    # evals of a learned policy train before as_of - this and score the touches after it: the rows
    # after the cut-off set the estimate's variance, the rows before it the model
    eval_holdout_days: int = Field(default=180, ge=7, le=330)
    # LightGBM boosters averaged, each on its own bootstrap of the customers (seeds seed..seed+n-1),
    # or `auto`: five up to 20,000 customers with features, one above (scoring time grows with
    # them; agent/learned/model.py). With one member there is no spread: the policy switches wherever
    # the model values another action higher.
    gbm_members: Annotated[Literal["auto"] | int, BeforeValidator(_members)] = "auto"


class RampSettings(Section):
    """The live ramp (section NBA_RAMP__): a candidate that passed the offline screen goes live on a
    randomized share of the treatment customers, the policy in place on the rest, until a sequential
    test on their outcomes promotes it or rolls it back."""

    share: float = Field(default=0.5, gt=0, lt=1, allow_inf_nan=False)  # decisions the candidate makes
    # non-inferiority margin, a share of the policy in place's value: promoted once the candidate is
    # shown no worse than this; rolled back once it is shown worse at all
    margin: float = Field(default=0.01, ge=0, lt=0.5, allow_inf_nan=False)
    alpha: float = Field(default=0.05, gt=0, lt=0.5, allow_inf_nan=False)  # of the confidence sequence
    # the offline screen: the eval's paired DR lower bound may be at most this share of the policy in
    # place's value below zero (a screen keeps out what is clearly worse; the ramp decides the rest)
    screen_margin: float = Field(default=0.1, ge=0, lt=1, allow_inf_nan=False)
    min_decisions: int = Field(default=200, ge=1)  # ramp outcomes before any verdict
    # a candidate the offline screen already showed better (its lower bound >= 0) is promoted after
    # this many ramp outcomes unless they show it worse: the ramp is then a canary, not the proof
    canary_decisions: int = Field(default=1000, ge=1)
    max_decisions: int = Field(default=50_000, ge=1)  # inconclusive by then: rolled back


class RunConfig(BaseSettings):
    """The settings every deciding command shares (activate, eval, prompt, next_best_action)."""

    model_config = SettingsConfigDict(
        env_prefix="NBA_", env_nested_delimiter="__", extra="ignore", frozen=True, validate_default=True
    )

    segment: SegmentChoice = "all"
    mode: Mode = "rules"
    # the prompt the evals measured best on the truth (bench/README.md): v3 drafts on the learned ranking
    prompt_version: PromptVersion = "v3"
    # what the guardrails enforce: defaults owned by the GuardrailSettings contract
    goal: Goal = _G["goal"].default
    discount_cap: Percent = _G["discount_cap"].default
    suppress_hours: Hours = _G["suppress_hours"].default
    global_holdout_pct: Percent = _G["global_holdout_pct"].default
    segment_holdout_pct: Percent = _G["segment_holdout_pct"].default
    holdout_salt: Salt = _G["holdout_salt"].default
    enforce_quiet_hours: bool = _G["enforce_quiet_hours"].default
    as_of: AsOf | None = None
    llm: LLMSettings = LLMSettings()
    learned: LearnedSettings = LearnedSettings()
    ramp: RampSettings = RampSettings()
    # Where the decision step runs (NBA_DECIDE_ON): in this process, or on the Spark cluster over
    # partitions of customer 360 (agent/spark/decisions.py; rules and learned modes).
    decide_on: Literal["local", "spark"] = "local"
    # the standard OpenAI variables, folded into `llm`
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL", exclude=True)
    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY", exclude=True)
    openai_model: str | None = Field(default=None, validation_alias="OPENAI_MODEL", exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        if _EXPLICIT_ONLY.get():
            return (init_settings,)
        return (init_settings, env_settings)

    @model_validator(mode="before")
    @classmethod
    def _fold_openai(cls, data: Any) -> Any:
        """The standard OpenAI variables configure the LLM section (before it is validated, so what
        depends on the endpoint, such as the concurrency, follows it)."""
        if not isinstance(data, dict):
            return data
        given = {
            k: data.get(alias)
            for k, alias in (
                ("base_url", "OPENAI_BASE_URL"),
                ("api_key", "OPENAI_API_KEY"),
                ("model", "OPENAI_MODEL"),
            )
        }
        given = {k: v for k, v in given.items() if v}
        if not given:
            return data
        llm = data.get("llm")
        llm = (
            dict(llm)
            if isinstance(llm, dict)
            else (llm.model_dump(exclude_unset=True) if isinstance(llm, BaseModel) else {})
        )
        if (
            "model" not in given
            and "api_key" in given
            and "base_url" not in given
            and not llm.get("base_url")
        ):
            given["model"] = "gpt-4o-mini"
        return {**data, "llm": {**given, **llm}}

    def guardrails(self, **overrides: Any) -> GuardrailSettings:
        """What the guardrails enforce for this run."""
        values = {f: getattr(self, f) for f in GuardrailSettings.model_fields}
        return GuardrailSettings(**(values | overrides))


def default(name: str, model: type[BaseModel] = RunConfig) -> Any:
    """A setting's default, for what shows or passes one elsewhere (Airflow params, the Python API)."""
    return model.model_fields[name].get_default(call_default_factory=True)


def bounds(name: str, model: type[BaseModel] = RunConfig) -> tuple[Any, Any]:
    """A numeric setting's inclusive (minimum, maximum); None where it has none."""
    metadata = model.model_fields[name].metadata
    lo = next((m.ge for m in metadata if isinstance(m, annotated_types.Ge)), None)
    hi = next((m.le for m in metadata if isinstance(m, annotated_types.Le)), None)
    return lo, hi


def choices_of(name: str, model: type[BaseModel] = RunConfig) -> list[Any]:
    """The values a Literal setting allows, in order."""
    return list(typing.get_args(model.model_fields[name].annotation))


S = TypeVar("S", bound=BaseSettings)
_EXPLICIT_ONLY: ContextVar[bool] = ContextVar("nba_settings_explicit_only", default=False)

# make variable per setting, where the Makefile has one
MAKE_VARS = {
    "segment": "SEGMENT",
    "mode": "MODE",
    "goal": "GOAL",
    "discount_cap": "DISCOUNT_CAP",
    "suppress_hours": "SUPPRESS_HOURS",
    "prompt_version": "PROMPT_VERSION",
    "global_holdout_pct": "GLOBAL_HOLDOUT_PCT",
    "segment_holdout_pct": "SEGMENT_HOLDOUT_PCT",
    "as_of": "AS_OF",
    "dry_run": "DRY_RUN",
    "limit": "LIMIT",
    "output": "OUTPUT",
    "force": "FORCE",
    "baseline": "BASELINE",
    "sample": "SAMPLE",
    "customer_id": "CUSTOMER_ID",
    "fail_if_worse": "FAIL_IF_WORSE",
}
# settings that have no command-line flag: set them in the environment
ENV_ONLY = frozenset({"destinations", "holdout_salt", "enforce_quiet_hours", "decide_on"})
_ALIASES = {
    "openai_base_url": "OPENAI_BASE_URL",
    "openai_api_key": "OPENAI_API_KEY",
    "openai_model": "OPENAI_MODEL",
}


def setting_names(loc: tuple[Any, ...]) -> str:
    """Every way to set the setting at `loc`: `--discount-cap / DISCOUNT_CAP= / NBA_DISCOUNT_CAP`."""
    # union members and list indices are not setting names: drop them
    parts = [str(p) for p in loc if isinstance(p, str) and p.isidentifier()]
    if not parts:
        return "settings"
    if parts[0] in _ALIASES:
        return _ALIASES[parts[0]]
    if parts[0] == LLM.section and parts[1:2] and parts[1] in ("base_url", "api_key", "model"):
        return f"NBA_LLM__{parts[1].upper()} / {_ALIASES['openai_' + parts[1]]}"
    env = "NBA_" + "__".join(p.upper() for p in parts)
    if len(parts) > 1 or parts[0] in ENV_ONLY:
        return env
    names = [f"--{parts[0].replace('_', '-')}"]
    if parts[0] in MAKE_VARS:
        names.append(f"{MAKE_VARS[parts[0]]}=")
    return " / ".join([*names, env])


def _range(cls: type[BaseModel], loc: tuple[Any, ...]) -> str | None:
    """'a number from 0 to 100' for a bounded numeric field at `loc`, else None."""
    model: Any = cls
    field = None
    for part in loc:
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            return None
        field = fields[part]
        model = field.annotation
    if field is None:
        return None
    metadata = list(field.metadata)
    base = field.annotation
    for arg in typing.get_args(field.annotation):  # Optional[Annotated[int, ...]]: look inside
        if typing.get_origin(arg) is Annotated:
            base, *extra = typing.get_args(arg)
            metadata += [m for e in extra for m in getattr(e, "metadata", [e])]
    lo: Any = next((m.ge for m in metadata if isinstance(m, annotated_types.Ge)), None)
    hi: Any = next((m.le for m in metadata if isinstance(m, annotated_types.Le)), None)
    gt: Any = next((m.gt for m in metadata if isinstance(m, annotated_types.Gt)), None)
    if gt is not None and lo is None and base in (int, int | None):
        lo, gt = gt + 1, None
    kind = "a whole number" if base in (int, int | None) else "a number"
    if lo is not None and hi is not None:
        return f"must be {kind} from {lo:g} to {hi:g}"
    if gt is not None and hi is not None:
        return f"must be {kind} above {gt:g} and at most {hi:g}"
    if lo is not None:
        return f"must be {kind} >= {lo:g}"
    return None


_NUMERIC_ERRORS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number")


def config_error(exc: ValidationError, cls: type[BaseModel] | None = None) -> ConfigError:
    """The first problem of a ValidationError as one ConfigError line."""
    err = exc.errors()[0]
    original = (err.get("ctx") or {}).get("error")
    if isinstance(original, ConfigError):  # raised by a validator that already named the setting
        return original
    loc = tuple(p for p in err.get("loc", ()) if isinstance(p, str) and p.isidentifier())
    kind = err.get("type", "")
    if kind == "missing":
        problem = "is required"
    elif kind == "extra_forbidden":
        problem = "is not a setting"
    elif kind == "bool_parsing":
        problem = "must be 1 or 0 (or true/false, yes/no)"
    elif kind == "literal_error":
        problem = f"must be one of {(err.get('ctx') or {}).get('expected', '')}"
    else:
        problem = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if cls is not None and (kind in _NUMERIC_ERRORS or kind.endswith("_parsing")):
            problem = _range(cls, loc) or problem
    value = err.get("input") if kind not in ("missing", "extra_forbidden") else None
    if isinstance(value, SecretStr) or (loc and str(loc[-1]) in ("token", "secret", "session_id", "api_key")):
        value = None  # never echo a secret
    if isinstance(value, dict | list):
        value = None
    return ConfigError(setting_names(loc), problem, value)


def load_settings(cls: type[S], **given: Any) -> S:
    """Build a command's settings from the flags it was given (None = not given) and the
    environment; a bad value raises ConfigError (one line)."""
    try:
        return cls(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise config_error(exc, cls) from None
    except SettingsError as exc:  # a variable pydantic-settings parses as JSON is not JSON
        found = re.search(r'field "(\w+)"', str(exc))
        name = f"NBA_{found.group(1).upper()}" if found else "an NBA_<SECTION> variable"
        field = _not_json_field(cls, found.group(1)) if found else None
        if field:  # NBA_<SECTION>__<FIELD> whose value is a mapping or a list
            raise ConfigError(field, "must be JSON (a mapping or a list, as the docs show)") from None
        raise ConfigError(
            name,
            f"is a settings section, not one value: set its fields as {name}__<FIELD>, or give it as JSON",
        ) from None


def _not_json_field(cls: type[BaseModel], section: str) -> str | None:
    """The NBA_<SECTION>__<FIELD> variable of a mapping or list field whose value is not JSON."""
    info = cls.model_fields.get(section)
    model = info.annotation if info else None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    prefix = f"NBA_{section.upper()}__"
    for key, value in os.environ.items():
        field = model.model_fields.get(key[len(prefix) :].lower()) if key.startswith(prefix) else None
        if field is not None and typing.get_origin(field.annotation) in (dict, list):
            try:
                json.loads(value)
            except ValueError:
                return key
    return None


def settings_from(cls: type[S], **values: Any) -> S:
    """Settings from explicit values only (the Python API and tests): no environment is read."""
    token = _EXPLICIT_ONLY.set(True)
    try:
        return cls(**values)
    except ValidationError as exc:
        raise config_error(exc, cls) from None
    finally:
        _EXPLICIT_ONLY.reset(token)
