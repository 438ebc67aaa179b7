"""LLM settings from the environment: standard OPENAI_* names, NBA_LLM__* for the rest, one-line errors."""

from __future__ import annotations

import pytest

from agent.errors import SettingsError
from agent.settings import EMBEDDED_MODEL, LLMSettings


def test_no_endpoint_means_embedded_model_without_reasks() -> None:
    s = LLMSettings.from_env({})
    assert s.embedded and s.model == EMBEDDED_MODEL and s.max_retries == 0


def test_configured_endpoint_keeps_reasks_and_explicit_value_wins() -> None:
    remote = LLMSettings.from_env({"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "OPENAI_MODEL": "m"})
    assert not remote.embedded and remote.max_retries == 1 and remote.model == "m"
    assert LLMSettings.from_env({"NBA_LLM__MAX_RETRIES": "2"}).max_retries == 2
    keyed = LLMSettings.from_env({"OPENAI_API_KEY": "sk-secret-value"})
    assert keyed.model == "gpt-4o-mini" and "sk-secret-value" not in repr(keyed)


def test_bad_setting_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="NBA_LLM__TEMPERATURE"):
        LLMSettings.from_env({"NBA_LLM__TEMPERATURE": "hot"})
    with pytest.raises(SettingsError, match="NBA_LLM__BOGUS"):
        LLMSettings.from_env({"NBA_LLM__BOGUS": "1"})


def test_instructor_mode_follows_the_server_and_one_setting_overrides() -> None:
    assert LLMSettings.from_env({}).mode == "json_schema"  # the embedded llama-server
    remote = LLMSettings.from_env({"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    assert remote.mode == "tools"
    own = LLMSettings.from_env(
        {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "NBA_LLM__INSTRUCTOR_MODE": "json_schema"}
    )
    assert own.mode == "json_schema"
    assert LLMSettings.from_env({"NBA_LLM__INSTRUCTOR_MODE": "tools"}).mode == "tools"
    with pytest.raises(SettingsError, match="NBA_LLM__INSTRUCTOR_MODE"):
        LLMSettings.from_env({"NBA_LLM__INSTRUCTOR_MODE": "grammar"})
    # the mode changes what the model returns: cached answers of one mode never serve the other
    fp = {
        m: LLMSettings.from_env({"NBA_LLM__INSTRUCTOR_MODE": m}).cache_fingerprint()
        for m in ("tools", "json_schema")
    }
    assert fp["tools"]["mode"] == "tools" and fp["json_schema"]["mode"] == "json_schema"


def test_embedded_concurrency_matches_the_server_slots_unless_set() -> None:
    s = LLMSettings.from_env({})
    assert s.slots == 4 and s.concurrency == 4
    assert LLMSettings.from_env({"NBA_LLM__SLOTS": "2"}).concurrency == 2
    assert LLMSettings.from_env({"NBA_LLM__SLOTS": "4", "NBA_LLM__CONCURRENCY": "1"}).concurrency == 1
    assert LLMSettings.from_env({"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}).concurrency == 2
    with pytest.raises(SettingsError, match="NBA_LLM__SLOTS"):
        LLMSettings.from_env({"NBA_LLM__SLOTS": "0"})


def test_model_path_must_name_a_gguf_file(tmp_path) -> None:
    with pytest.raises(SettingsError, match=r"NBA_LLM__MODEL_PATH.*no file at"):
        LLMSettings.from_env({"NBA_LLM__MODEL_PATH": str(tmp_path / "missing.gguf")})
    text = tmp_path / "notes.gguf"
    text.write_text("not a model")
    with pytest.raises(SettingsError, match="not a GGUF file"):
        LLMSettings.from_env({"NBA_LLM__MODEL_PATH": str(text)})
    model = tmp_path / "mine.gguf"
    model.write_bytes(b"GGUF\x03\x00\x00\x00")
    s = LLMSettings.from_env({"NBA_LLM__MODEL_PATH": str(model)})
    assert s.model_path == model and s.embedded
    assert s.cache_fingerprint()["model_path"] == str(model)  # another model: other cached answers


def test_threads_default_to_every_core_and_can_be_set() -> None:
    assert LLMSettings.from_env({}).threads is None
    assert LLMSettings.from_env({"NBA_LLM__THREADS": "1"}).threads == 1
    with pytest.raises(SettingsError, match="NBA_LLM__THREADS"):
        LLMSettings.from_env({"NBA_LLM__THREADS": "0"})
