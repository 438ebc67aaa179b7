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
