"""docker_group_members' reading of the processes that still hold a group after a user left it,
on this machine's real /proc (adding and removing members runs on test-bed hosts:
tests/integration/test_role_docker.py)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from ansible_collections.provision.hosts.plugins.modules import docker_group_members

GID = 54321  # a group no account here has: only the process started below holds it


@pytest.fixture
def nobody_holding_the_group() -> Iterator[int]:
    """A process running as `nobody` with GID among its supplementary groups."""
    proc = subprocess.Popen(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", f"--groups={GID}", "sleep", "60"]
    )
    try:
        for _attempt in range(50):  # until setpriv has exec'd sleep (bounded: 5 s)
            with open(f"/proc/{proc.pid}/status", encoding="utf-8") as status:
                if "Name:\tsleep" in status.read():
                    break
            subprocess.run(["sleep", "0.1"], check=True)
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_the_process_holding_the_group_is_named(nobody_holding_the_group: int) -> None:
    found = docker_group_members.holding(["nobody", "no-such-account"], GID)
    assert list(found) == ["nobody"]
    # (tests running side by side may hold the group too)
    assert f"{nobody_holding_the_group} sleep" in found["nobody"]


def test_a_process_without_the_group_is_not(nobody_holding_the_group: int) -> None:
    assert docker_group_members.holding(["nobody"], GID + 1) == {}
    assert docker_group_members.holding(["root"], GID) == {}
