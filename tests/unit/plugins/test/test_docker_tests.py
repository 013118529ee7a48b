"""The role's Jinja tests (plugins/test/docker_tests.py) over what docker_host_facts reads."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.provision.hosts.plugins.test import docker_tests

FILE: dict[str, Any] = {"exists": True, "is_dir": False, "mode": "0644", "uid": 0, "gid": 0}


@pytest.mark.parametrize(
    ("state", "content", "expected"),
    [
        ({**FILE, "content": "x"}, "x", True),
        ({**FILE, "content": "x"}, None, True),
        ({**FILE, "content": "x"}, "y", False),
        ({**FILE, "content": "x", "mode": "0600"}, "x", False),
        ({**FILE, "content": "x", "uid": 1000}, "x", False),
        ({**FILE, "is_dir": True}, None, False),
        ({"exists": False}, "x", False),
        ({}, None, False),
    ],
)
def test_file_in_place(state: dict[str, Any], content: str | None, expected: bool) -> None:
    assert docker_tests.docker_file_in_place(state, "0644", content) is expected


def test_dir_in_place() -> None:
    directory = {**FILE, "is_dir": True, "mode": "0755"}
    assert docker_tests.docker_dir_in_place(directory, "0755")
    assert not docker_tests.docker_dir_in_place({**directory, "mode": "0700"}, "0755")
    assert not docker_tests.docker_dir_in_place(FILE, "0644")


def test_at_version_takes_apt_globs() -> None:
    packages = {"docker-ce": {"status": "installed", "version": "5:27.1.1-1~ubuntu.20.04~focal"}}
    assert docker_tests.docker_at_version("docker-ce", packages, "5:27.1.1-1~ubuntu.20.04~focal")
    assert docker_tests.docker_at_version("docker-ce", packages, "5:27.*")
    assert not docker_tests.docker_at_version("docker-ce", packages, "5:26.*")
    assert not docker_tests.docker_at_version("docker-ce-cli", packages, "5:27.*")


def test_held_and_unit_state() -> None:
    assert docker_tests.docker_held("docker-ce", {"docker-ce": {"want": "hold"}})
    assert not docker_tests.docker_held("docker-ce", {"docker-ce": {"want": "install"}})
    units = {"docker": {"enabled": "enabled", "active": "active"}}
    assert docker_tests.docker_unit_in_state("docker", units, True, "started")
    assert not docker_tests.docker_unit_in_state("docker", units, False, "started")
    assert not docker_tests.docker_unit_in_state("docker", units, True, "stopped")
    assert not docker_tests.docker_unit_in_state("containerd", units, True, "started")
