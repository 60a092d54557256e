from __future__ import annotations

from pathlib import Path

import pytest

from studio.errors import ConfigError
from studio.queue import redacted
from studio.settings import load_settings


def test_environment_beats_toml_beats_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "atelier.toml"
    config.write_text('queue_prefix = "fromtoml"\npoll_delay_s = 0.1\n')
    monkeypatch.setenv("ATELIER_CONFIG", str(config))
    monkeypatch.setenv("ATELIER_POLL_DELAY_S", "0.05")
    settings = load_settings()
    assert settings.queue_prefix == "fromtoml"
    assert settings.poll_delay_s == 0.05
    assert settings.max_tries == 3
    assert settings.queue_name("inference") == "fromtoml:inference"


def test_invalid_setting_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATELIER_DEVICE", "tpu")
    with pytest.raises(ConfigError, match="`device` \\(ATELIER_DEVICE\\)"):
        load_settings()


def test_redis_password_never_shown() -> None:
    assert redacted("redis://user:s3cret@host:6380/2") == "redis://user:***@host:6380/2"
    assert "s3cret" not in redacted("redis://:s3cret@host/0")
