"""docker_cli_config on real files: a user's config.json gets docker_proxy's proxies.default,
keeps everything else (the user's registry logins), is the user's and 0600, and neither the
result nor the diff shows anything of the file but proxies.default."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.provision.hosts.plugins.modules import docker_cli_config
from ansible_collections.provision.hosts.tests.unit.plugins.modules.conftest import (
    attributes,
    run_module,
)

LOGIN = "b3BzOnJlZ2lzdHJ5LXNlY3JldA=="  # ops:registry-secret, as docker login stores it
PROXY = {"http": "http://px:proxy-secret-1@proxy.corp:3128", "https": "", "no_proxy": ["corp"]}


def run(capsys: pytest.CaptureFixture[str], arguments: dict[str, Any]) -> dict[str, Any]:
    return run_module(docker_cli_config.main, capsys, arguments)


def test_the_proxy_is_merged_in_and_nothing_else_is_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / ".docker" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"auths": {"registry.corp": {"auth": LOGIN}}}))
    arguments = {"files": [{"path": str(config), "uid": 0, "gid": 0}], "proxy": PROXY}
    result = run(capsys, arguments)
    assert result["written"] == [str(config)]
    written = json.loads(config.read_text())
    assert written["auths"] == {"registry.corp": {"auth": LOGIN}}
    assert written["proxies"]["default"]["httpProxy"] == PROXY["http"]
    assert attributes(str(config)) == ("0600", 0, 0)
    shown = json.dumps(result)
    assert LOGIN not in shown
    assert "proxy-secret-1" not in shown
    assert "proxies.default" in result["diff"][0]["after_header"]
    assert run(capsys, arguments)["changed"] is False
