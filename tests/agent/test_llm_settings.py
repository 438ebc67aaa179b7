"""LLM settings from the environment: standard OPENAI_* names, NBA_LLM__* for the rest, one-line errors."""

from __future__ import annotations

import pytest

from core.config import EMBEDDED_MODEL, RunConfig, load_settings
from core.errors import ConfigError


def llm(monkeypatch: pytest.MonkeyPatch, **env: str):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return load_settings(RunConfig).llm


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
    monkeypatch.delenv("NBA_LLM__TEMPERATURE")
    with pytest.raises(ConfigError, match="NBA_LLM__BOGUS: is not a setting"):
        llm(monkeypatch, NBA_LLM__BOGUS="1")
