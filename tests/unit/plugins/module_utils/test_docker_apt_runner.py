"""docker_apt_runner on this machine's real processes, files and apt configuration: a command
that finds apt's lock held is started again until it gets it or the deadline passes, the marks
of the last full refresh come back after a refresh, and apt is shown every source but Docker's.
(Refreshes and installs against a repository: tests/integration/test_role_apt_refresh.py.)"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from ansible.module_utils import basic
from ansible_collections.provision.hosts.plugins.module_utils import docker_apt_lists as lists
from ansible_collections.provision.hosts.plugins.module_utils import docker_apt_runner as runner

LOCKED = "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)"


@pytest.fixture
def module() -> Iterator[basic.AnsibleModule]:
    basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": {}}).encode()
    basic._ANSIBLE_PROFILE = "legacy"
    try:
        yield basic.AnsibleModule(argument_spec={})
    finally:
        basic._ANSIBLE_ARGS = None
        basic._ANSIBLE_PROFILE = None


def locked_twice(tmp_path: Path) -> list[str]:
    """A command that finds apt's lock held on its first two runs, then gets it."""
    count = tmp_path / "runs"
    script = (
        f"n=$(cat {count} 2>/dev/null || echo 0); echo $((n + 1)) > {count}; "
        f"[ $n -ge 2 ] || {{ echo {shlex.quote(LOCKED)} >&2; exit 100; }}; echo done"
    )
    return ["sh", "-c", script]


def test_a_held_lock_is_waited_for(module: basic.AnsibleModule, tmp_path: Path) -> None:
    assert lists.lock_failure(LOCKED)  # what the runner waits on
    apt = runner.Apt(module, lock_timeout=30)
    rc, output = apt.run("install", locked_twice(tmp_path))
    assert (rc, apt.lock_waits) == (0, 2)
    assert "done" in output


def test_the_wait_ends_at_the_deadline(module: basic.AnsibleModule, tmp_path: Path) -> None:
    apt = runner.Apt(module, lock_timeout=0)
    rc, output = apt.run("install", locked_twice(tmp_path))
    assert (rc, apt.lock_waits) == (100, 0)
    assert "Could not get lock" in output


def test_another_failure_is_not_retried(module: basic.AnsibleModule) -> None:
    apt = runner.Apt(module, lock_timeout=30)
    rc, _output = apt.run(
        "install", ["sh", "-c", "echo 'E: Unable to locate package x' >&2; exit 100"]
    )
    assert (rc, apt.lock_waits) == (100, 0)


def test_the_marks_of_the_last_full_refresh_come_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stamp, new_stamp = tmp_path / "update-success-stamp", tmp_path / "update-stamp"
    stamp.write_text("")
    os.utime(stamp, ns=(1_000_000_000, 2_000_000_000))
    lists_dir = tmp_path / "lists"
    lists_dir.mkdir()
    monkeypatch.setattr(lists, "STAMPS", (str(stamp), str(new_stamp)))
    marks = runner.Marks(str(lists_dir))
    # what apt-get update and its Post-Invoke-Success hooks do
    stamp.touch()
    new_stamp.write_text("")
    (lists_dir / "x_Packages").write_text("")
    marks.restore()
    assert stamp.stat().st_mtime_ns == 2_000_000_000
    assert not new_stamp.exists()  # a stamp the last full refresh did not leave goes again
    assert lists_dir.stat().st_mtime_ns == marks.times[str(lists_dir)][1]  # type: ignore[index]


def test_apt_is_shown_every_source_but_dockers(module: basic.AnsibleModule) -> None:
    parts = "/etc/apt/sources.list.d"
    others = sorted(n for n in os.listdir(parts) if n != "docker.sources")
    with runner.without_source(module, f"{parts}/docker.sources") as options:
        assert options[0] == "-o"
        staged = options[1].partition("=")[2]
        assert sorted(os.listdir(staged)) == others
        assert all(os.readlink(f"{staged}/{n}") == f"{parts}/{n}" for n in others)
    assert not os.path.exists(staged)
    # a source outside apt's source parts: nothing to leave out
    with runner.without_source(module, "/srv/elsewhere/docker.sources") as options:
        assert options == []
