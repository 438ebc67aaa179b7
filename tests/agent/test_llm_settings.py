"""LLM settings from the environment: standard OPENAI_* names, NBA_LLM__* for the rest, one-line errors."""

from __future__ import annotations

import pytest

from core.config import EMBEDDED_MODEL, LLMSettings, RunConfig, load_settings
from core.errors import ConfigError


def llm(monkeypatch: pytest.MonkeyPatch, **env: str) -> LLMSettings:
    for k in list(env):
        monkeypatch.setenv(k, env[k])
    try:
        return load_settings(RunConfig).llm
    finally:
        for k in env:
            monkeypatch.delenv(k)


def test_no_endpoint_means_embedded_model_without_reasks(monkeypatch: pytest.MonkeyPatch) -> None:
    s = llm(monkeypatch)
    assert s.embedded and s.model == EMBEDDED_MODEL and s.reasks == 0


def test_configured_endpoint_keeps_reasks_and_explicit_value_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    remote = llm(monkeypatch, OPENAI_BASE_URL="http://127.0.0.1:9/v1", OPENAI_MODEL="m")
    assert not remote.embedded and remote.reasks == 1 and remote.model == "m"
    assert llm(monkeypatch, NBA_LLM__MAX_RETRIES="2").reasks == 2


def test_a_key_alone_means_openai_and_never_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    keyed = llm(monkeypatch, OPENAI_API_KEY="sk-secret-value")
    assert keyed.model == "gpt-4o-mini" and "sk-secret-value" not in repr(keyed)


def test_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="NBA_LLM__TEMPERATURE: must be a number from 0 to 2"):
        llm(monkeypatch, NBA_LLM__TEMPERATURE="hot")
    with pytest.raises(ConfigError, match="NBA_LLM__BOGUS: is not a setting"):
        llm(monkeypatch, NBA_LLM__BOGUS="1")
    # a section given one plain value (pydantic-settings reads a section as JSON): one line, not a
    # SettingsError traceback; as JSON it is taken
    with pytest.raises(ConfigError, match="NBA_LLM: is a settings section.*NBA_LLM__<FIELD>"):
        llm(monkeypatch, NBA_LLM="fast")
    assert llm(monkeypatch, NBA_LLM='{"slots": 2}').slots == 2
    with pytest.raises(
        ConfigError, match=r"NBA_LLM__CACHE: must be 1 or 0 \(or true/false, yes/no\) \(got 'maybe'\)"
    ):
        llm(monkeypatch, NBA_LLM__CACHE="maybe")


def test_instructor_mode_follows_the_server_and_one_setting_overrides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert llm(monkeypatch).resolved_instructor_mode == "json_schema"  # the embedded llama-server
    assert llm(monkeypatch, OPENAI_BASE_URL="http://127.0.0.1:9/v1").resolved_instructor_mode == "tools"
    own = llm(monkeypatch, OPENAI_BASE_URL="http://127.0.0.1:9/v1", NBA_LLM__INSTRUCTOR_MODE="json_schema")
    assert own.resolved_instructor_mode == "json_schema"
    assert llm(monkeypatch, NBA_LLM__INSTRUCTOR_MODE="tools").resolved_instructor_mode == "tools"
    with pytest.raises(ConfigError, match="NBA_LLM__INSTRUCTOR_MODE"):
        llm(monkeypatch, NBA_LLM__INSTRUCTOR_MODE="grammar")
    # the mode changes what the model returns: cached answers of one mode never serve the other
    fp = {
        m: llm(monkeypatch, NBA_LLM__INSTRUCTOR_MODE=m).cache_fingerprint() for m in ("tools", "json_schema")
    }
    assert fp["tools"]["mode"] == "tools" and fp["json_schema"]["mode"] == "json_schema"


def test_embedded_concurrency_matches_the_server_slots_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    s = llm(monkeypatch)
    assert s.slots == 8 and s.concurrency == 8
    assert llm(monkeypatch, NBA_LLM__SLOTS="2").concurrency == 2
    assert llm(monkeypatch, NBA_LLM__SLOTS="4", NBA_LLM__CONCURRENCY="1").concurrency == 1
    assert llm(monkeypatch, OPENAI_BASE_URL="http://127.0.0.1:9/v1").concurrency == 2
    with pytest.raises(ConfigError, match="NBA_LLM__SLOTS"):
        llm(monkeypatch, NBA_LLM__SLOTS="0")


def test_model_path_must_name_a_gguf_file(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"NBA_LLM__MODEL_PATH: no file at"):
        llm(monkeypatch, NBA_LLM__MODEL_PATH=str(tmp_path / "missing.gguf"))
    text = tmp_path / "notes.gguf"
    text.write_text("not a model")
    with pytest.raises(ConfigError, match="not a GGUF file"):
        llm(monkeypatch, NBA_LLM__MODEL_PATH=str(text))
    model = tmp_path / "mine.gguf"
    model.write_bytes(b"GGUF\x03\x00\x00\x00")
    s = llm(monkeypatch, NBA_LLM__MODEL_PATH=str(model))
    assert s.model_path == model and s.embedded
    assert s.cache_fingerprint()["model_path"] == str(model)  # another model: other cached answers


def test_threads_default_to_every_core_and_can_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert llm(monkeypatch).threads is None
    assert llm(monkeypatch, NBA_LLM__THREADS="1").threads == 1
    with pytest.raises(ConfigError, match="NBA_LLM__THREADS"):
        llm(monkeypatch, NBA_LLM__THREADS="0")
