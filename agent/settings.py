"""LLM settings, read once from the environment. Errors name the variable to set.

OpenAI-compatible endpoint: OPENAI_BASE_URL, OPENAI_API_KEY, OPENAI_MODEL (the standard names, so
vLLM, Ollama, llama.cpp or OpenAI itself work unchanged). Everything else: NBA_LLM__<FIELD>.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from agent.errors import SettingsError

EMBEDDED_MODEL = "smollm2-135m-instruct"
EMBEDDED_MAX_RETRIES = 0
# llama-server slots for the embedded model, and the client concurrency that follows them unless set:
# 4 slots at concurrency 4: 0.96 decisions/s through decide() vs 0.37 before, quiet (issue 17).
EMBEDDED_SLOTS = 4


class LLMSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = None
    api_key: SecretStr | None = None
    model: str = EMBEDDED_MODEL
    # auto: JSON_SCHEMA (response_format) for the embedded llama-server, which rejects forced tool calls;
    # TOOLS for any configured endpoint. A llama-server of your own: NBA_LLM__INSTRUCTOR_MODE=json_schema.
    instructor_mode: Literal["auto", "tools", "json_schema", "json", "md_json"] = "auto"
    temperature: float = Field(default=0.2, ge=0, le=2)
    seed: int = 7
    max_retries: int = Field(default=1, ge=0, le=5)  # reasks after the first attempt
    timeout_s: float = Field(default=120.0, gt=0)
    concurrency: int = Field(default=2, ge=1, le=256)  # the embedded model: `slots` unless set
    slots: int = Field(default=EMBEDDED_SLOTS, ge=1, le=64)  # parallel sequences of the embedded server
    model_path: Path | None = None  # a GGUF to serve instead of the shipped SmolLM2 (served as it is)
    # llama-server's threads (default: every core). On a machine other work keeps busy, 1 thread beats 2
    # by 8-30x (ggml's threads wait for each other at every op; bench/bench_llm_embedded.py).
    threads: int | None = Field(default=None, ge=1, le=256)
    max_tokens: int = Field(default=200, ge=16)
    http_retries: int = Field(default=0, ge=0, le=5)
    http_transport: Literal["aiohttp", "httpx"] = "aiohttp"
    cache: bool = True

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

    @property
    def embedded(self) -> bool:
        """No endpoint and no key configured: the run serves the embedded local model itself."""
        return self.base_url is None and self.api_key is None

    @property
    def mode(self) -> str:
        """The instructor mode in force: `instructor_mode`, with auto resolved for the server."""
        if self.instructor_mode != "auto":
            return self.instructor_mode
        return "json_schema" if self.embedded else "tools"

    def cache_fingerprint(self) -> dict[str, object]:
        """Settings that change what the model returns (never the key)."""
        return {
            "model": self.model,
            "mode": self.mode,
            "model_path": str(self.model_path) if self.model_path else None,
            "temperature": self.temperature,
            "seed": self.seed,
            "max_retries": self.max_retries,
            "max_tokens": self.max_tokens,
        }

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> LLMSettings:
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        if env.get("OPENAI_BASE_URL"):
            values["base_url"] = env["OPENAI_BASE_URL"]
        if env.get("OPENAI_API_KEY"):
            values["api_key"] = env["OPENAI_API_KEY"]
        if env.get("OPENAI_MODEL"):
            values["model"] = env["OPENAI_MODEL"]
        elif values.get("api_key") and not values.get("base_url"):
            values["model"] = "gpt-4o-mini"
        prefix = "NBA_LLM__"
        for key, raw in env.items():
            if key.startswith(prefix):
                field = key[len(prefix) :].lower()
                if field not in cls.model_fields or field in {"base_url", "api_key", "model"}:
                    raise SettingsError(key, f"unknown setting; valid: {', '.join(_public_fields())}")
                values[field] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "max_retries" not in values and not values.get("base_url") and not values.get("api_key"):
            # The embedded 135M model almost never fixes an answer when asked again (1 rescue in ~100
            # customers with 2 reasks, measured), and each reask costs a full completion: fall back to
            # the rules at once instead. Any configured endpoint keeps the default reask.
            values["max_retries"] = EMBEDDED_MAX_RETRIES
        try:
            settings = cls.model_validate(values)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else "?"
            var = {"base_url": "OPENAI_BASE_URL", "api_key": "OPENAI_API_KEY", "model": "OPENAI_MODEL"}.get(
                field, prefix + field.upper()
            )
            raise SettingsError(var, err["msg"]) from None
        if settings.embedded and "concurrency" not in values:
            settings = settings.model_copy(update={"concurrency": settings.slots})  # a request per slot
        return settings


def _public_fields() -> list[str]:
    return [
        "NBA_LLM__" + f.upper() for f in LLMSettings.model_fields if f not in {"base_url", "api_key", "model"}
    ]
