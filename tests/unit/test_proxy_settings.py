"""docker_proxy as provision takes it: ``[docker] proxy`` in provision.toml and
``PROVISION_DOCKER_PROXY`` (JSON), validated by the role's argument spec and format rules, a
malformed value refused with one line that never shows a password."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.errors import SettingsError
from provision.settings import load_settings


def test_the_docker_table_and_the_environment_give_docker_proxy(
    workdir: Path, host_limits: object
) -> None:
    (workdir / "provision.toml").write_text(
        '[docker.proxy]\nhttp = "http://proxy.corp:3128"\nno_proxy = ["localhost"]\n',
        encoding="utf-8",
    )
    # the argument spec's validator fills the options left out with their defaults
    assert load_settings(env={}).role_vars()["docker_proxy"] == {
        "http": "http://proxy.corp:3128",
        "https": "",
        "no_proxy": ["localhost"],
    }
    settings = load_settings(env={"PROVISION_DOCKER_PROXY": '{"https": "http://other:8080"}'})
    assert settings.role_vars()["docker_proxy"] == {
        "http": "",
        "https": "http://other:8080",
        "no_proxy": [],
    }


@pytest.mark.parametrize(
    "value",
    ['{"https": "http://user:s3cret@proxy:3128/p"}', '{"http": "http://proxy:3128/path"}'],
)
def test_a_malformed_proxy_is_refused_in_one_line_without_its_password(
    workdir: Path, host_limits: object, value: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env={"PROVISION_DOCKER_PROXY": value}).role_vars()
    message = caught.value.message
    assert "PROVISION_DOCKER_PROXY" in message
    assert "must be an http:// or https:// proxy URL" in message
    assert "s3cret" not in message
    assert "\n" not in message
    assert caught.value.exit_code == 2
