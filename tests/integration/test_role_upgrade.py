"""Engine upgrades by the role's policy (docker_upgrade, docker_version globs), as real apt
upgrades from the test bed's repository, which carries three engine versions per release
(testbed/debs.py engine_versions: OLD and PATCH of an older series, then NEWEST):

- --check on a fresh host with docker_upgrade=latest says what it would install, changes nothing;
- a host pinned at OLD, with docker_upgrade=series, moves to PATCH (held), then changed=0;
- --check names the version docker_upgrade=latest would move to and changes nothing;
- a running container with live-restore off stops the upgrade before anything changed (packages,
  daemon.json, the container), in one line naming the container and the variable;
- with live-restore on, latest upgrades to NEWEST under the running container: same start time,
  a new dockerd that answers, the package at the new version;
- a docker_version glob takes its newest match, held against a routine apt upgrade, then
  changed=0.

One focal host for the whole module, in that order. Needs the test bed (python -m testbed up).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from provision.role_options import role_defaults
from tests.bed import bed_role_vars, ready_status, run_provision, run_testbed
from tests.integration.test_role_docker import (
    PLAN_TASK,
    Host,
    container_running,
    container_started_at,
    converge,
    dockerd_pid,
    failed_at,
    start,
    start_sleeper,
    succeeded,
)

pytestmark = pytest.mark.integration

ENGINE = ("docker-ce", "docker-ce-cli")


def dpkg_sorted(versions: list[str]) -> list[str]:
    def compare(a: str, b: str) -> int:
        if a == b:
            return 0
        lower = subprocess.run(["dpkg", "--compare-versions", a, "lt", b], check=False)
        return -1 if lower.returncode == 0 else 1

    return sorted(versions, key=functools.cmp_to_key(compare))


def installed(host: Host) -> dict[str, str]:
    out = host.sh("dpkg-query -W -f '${Package} ${Version}\\n' " + " ".join(ENGINE))
    return dict(line.split(" ", 1) for line in out.splitlines())


def holds(host: Host) -> set[str]:
    return set(host.sh("apt-mark showhold").split())


@pytest.fixture(scope="module")
def role_vars() -> dict[str, Any]:
    ready_status()
    return bed_role_vars()


@pytest.fixture(scope="module")
def host(role_vars: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """A fresh focal host (the first test sees it so)."""
    bed_host = start(f"up-upg{os.getpid() % 100000}", tmp_path_factory.mktemp("upgrade"))
    try:
        yield bed_host
    finally:
        run_testbed("hosts", "stop", bed_host.name, timeout=300)


@pytest.fixture(scope="module")
def versions(role_vars: dict[str, Any], host: Host) -> list[str]:
    """The host converged with the role's defaults (the newest engine, no hold), and the engine
    versions the repository offers it, oldest first (at least three)."""
    succeeded(converge(host, role_vars))
    found = host.sh("apt-cache madison docker-ce | awk -F'|' '{gsub(/ /, \"\", $2); print $2}'")
    ordered = dpkg_sorted(found.split())
    assert len(ordered) >= 3, ordered
    return ordered


def check_run(host: Host, extravars: dict[str, Any]) -> list[str]:
    """``provision apply --check`` on HOST (must succeed): its output lines that name HOST."""
    workdir = host.inventory.parent
    varsfile = workdir / "check-vars.json"
    varsfile.write_text(json.dumps(extravars), encoding="utf-8")
    proc = run_provision(
        "apply", "--check", "-i", str(host.inventory), "-e", f"@{varsfile}", cwd=workdir
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return [line for line in (proc.stdout + proc.stderr).splitlines() if host.name in line]


def test_check_on_a_fresh_host_says_what_it_would_install_and_changes_nothing(
    host: Host, role_vars: dict[str, Any]
) -> None:
    lines = check_run(host, {**role_vars, "docker_upgrade": "latest"})

    assert any("docker_upgrade=latest: docker-ce is installed at" in line for line in lines), lines
    assert not host.exists("/etc/apt/sources.list.d/docker.sources")
    assert host.sh("dpkg-query -W -f '${db:Status-Status}' docker-ce 2>/dev/null || true") != (
        "installed"
    )


def test_series_moves_the_oldest_to_the_newest_patch_then_changes_nothing(
    host: Host, role_vars: dict[str, Any], versions: list[str]
) -> None:
    oldest, patch = versions[0], versions[1]
    succeeded(converge(host, {**role_vars, "docker_version": oldest}))
    assert installed(host) == dict.fromkeys(ENGINE, oldest)

    first = converge(host, {**role_vars, "docker_upgrade": "series"})

    succeeded(first)
    assert first.result.changed > 0
    assert installed(host) == dict.fromkeys(ENGINE, patch)
    assert holds(host) >= set(ENGINE)
    assert any(f"moves from {oldest} to {patch}" in w for w in first.result.warnings)
    assert host.sh("docker version --format '{{.Server.Os}}'") == "linux"
    again = converge(host, {**role_vars, "docker_upgrade": "series"})
    succeeded(again)
    assert again.result.changed == 0


def test_check_names_the_target_and_changes_nothing(
    host: Host, role_vars: dict[str, Any], versions: list[str]
) -> None:
    before, pid = installed(host), dockerd_pid(host)

    lines = check_run(host, {**role_vars, "docker_upgrade": "latest"})

    assert any(f"to {versions[-1]}" in line for line in lines), lines
    assert installed(host) == before
    assert dockerd_pid(host) == pid


def test_a_running_container_without_live_restore_stops_the_upgrade_before_anything(
    host: Host, role_vars: dict[str, Any]
) -> None:
    started = start_sleeper(host, "job")
    before, daemon_json = installed(host), host.sh("cat /etc/docker/daemon.json")
    defaults = role_defaults()["docker_daemon_options"]
    options = {**defaults, "max-concurrent-downloads": 4}  # one more key, dockerd reloads it
    extravars = {**role_vars, "docker_upgrade": "latest", "docker_daemon_options": options}
    run = converge(host, extravars)

    message = failed_at(run, PLAN_TASK)
    assert "\n" not in message
    assert "job" in message
    assert "docker_restart_running_engine" in message
    assert installed(host) == before
    assert host.sh("cat /etc/docker/daemon.json") == daemon_json
    assert container_running(host, "job")
    assert container_started_at(host, "job") == started


def test_live_restore_on_upgrades_under_a_running_container(
    host: Host, role_vars: dict[str, Any], versions: list[str]
) -> None:
    live = {**role_vars, "docker_live_restore": True}
    succeeded(converge(host, live))  # a reload: the container keeps running
    started, pid = container_started_at(host, "job"), dockerd_pid(host)

    run = converge(host, {**live, "docker_upgrade": "latest"})

    succeeded(run)
    assert installed(host) == dict.fromkeys(ENGINE, versions[-1])
    assert dockerd_pid(host) != pid  # the package's maintainer scripts restarted it
    assert host.sh("docker info --format '{{.LiveRestoreEnabled}}'") == "true"
    assert container_running(host, "job")
    assert container_started_at(host, "job") == started
    again = converge(host, {**live, "docker_upgrade": "latest"})
    succeeded(again)
    assert again.result.changed == 0


def test_a_glob_takes_its_newest_match_and_holds_it(
    host: Host, role_vars: dict[str, Any], versions: list[str]
) -> None:
    oldest, patch = versions[0], versions[1]
    series_glob = oldest.split("-")[0].rsplit(".", 1)[0] + ".*"  # 5:26.0.*: OLD and PATCH
    live = {**role_vars, "docker_live_restore": True, "docker_version": series_glob}

    succeeded(converge(host, live))

    assert installed(host) == dict.fromkeys(ENGINE, patch)
    assert holds(host) >= set(ENGINE)
    routine = host.sh("apt-get --simulate upgrade")
    assert "Inst docker-ce " not in routine
    assert container_running(host, "job")
    again = converge(host, live)
    succeeded(again)
    assert again.result.changed == 0
