"""Behaviour of the ``docker`` role that molecule's converge/idempotence/verify do not prove.

- A key whose fingerprint does not match fails the run before docker.sources exists.
- Preflight names every problem it finds (unknown users, a malformed fingerprint, a daemon.json
  that is not an object) in one failure, before anything changes.
- A no-op re-run does not restart the daemon: a container started before it still runs, with
  the same start time, under the same dockerd.
- Changing a daemon option restarts the daemon exactly once; a key dropped from the role's
  options leaves daemon.json again, while a key the role does not own stays.

Needs the test bed (``python -m testbed up``). The role runs through provision's one
ansible-runner adapter, against test-bed hosts over SSH.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provision.paths import data_paths
from provision.role_options import role_defaults
from provision.runner import RunResult, TaskResult, run_playbook
from tests.bed import ready_status, run_testbed, ssh_argv

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
RESTART_TASK = "docker : Restart docker"
FINGERPRINT_TASK = "docker : Install Docker's verified key and apt source"
# A key daemon.json holds that the role does not own (like an NVIDIA runtime entry would be).
FOREIGN_KEY = ("max-concurrent-uploads", 3)
# Sleeps forever; built on the host from its own /bin/sleep (no registry needed).
SLEEPER_IMAGE = "role-test-sleeper:latest"


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    user: str
    identity_file: str
    inventory: Path

    def sh(self, command: str, *, check: bool = True) -> str:
        """Run ``command`` as root on the host; its stdout."""
        argv = [
            *ssh_argv(self.address, self.identity_file, self.user),
            "sudo sh -c " + shlex.quote(command),
        ]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
        if check and proc.returncode != 0:
            pytest.fail(f"{command!r} on {self.name} failed ({proc.returncode}): {proc.stderr}")
        return proc.stdout.strip()

    def exists(self, path: str) -> bool:
        return self.sh(f"test -e {shlex.quote(path)} && echo yes || echo no") == "yes"


@dataclass
class Run:
    result: RunResult
    tasks: list[TaskResult]

    def count(self, task: str, status: str) -> int:
        return sum(1 for t in self.tasks if t.task == task and t.status == status)


def converge(host: Host, extravars: dict[str, Any]) -> Run:
    tasks: list[TaskResult] = []
    paths = data_paths()
    result = run_playbook(
        paths=paths,
        playbook=paths.site_playbook,
        inventory=host.inventory,
        extravars=extravars,
        on_task=tasks.append,
    )
    return Run(result, tasks)


def succeeded(run: Run) -> None:
    failures = "; ".join(f"{f.task}: {f.message}" for f in run.result.failures)
    assert run.result.status == "successful", failures or run.result.error_lines


@pytest.fixture(scope="module")
def role_vars() -> dict[str, Any]:
    ready_status()
    proc = run_testbed("vars", timeout=120)
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert isinstance(document, dict)
    return document


def start(name: str, workdir: Path) -> Host:
    proc = run_testbed("hosts", "start", f"{name}=focal")
    assert proc.returncode == 0, proc.stderr[-2000:]
    (info,) = json.loads(proc.stdout)
    inventory = run_testbed("hosts", "inventory", name, timeout=120)
    assert inventory.returncode == 0, inventory.stderr
    path = workdir / f"{name}.yml"
    path.write_text(inventory.stdout, encoding="utf-8")
    return Host(name, info["address"], info["user"], info["identity_file"], path)


@pytest.fixture
def fresh_host(role_vars: dict[str, Any], tmp_path: Path) -> Iterator[Host]:
    host = start(f"rolekey{os.getpid() % 100000}", tmp_path)
    try:
        yield host
    finally:
        run_testbed("hosts", "stop", host.name, timeout=300)


@pytest.fixture(scope="module")
def converged(
    role_vars: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Host]:
    """A focal host converged once, with a daemon.json key the role does not own."""
    host = start(f"roledmn{os.getpid() % 100000}", tmp_path_factory.mktemp("role"))
    try:
        foreign = json.dumps(dict([FOREIGN_KEY]))
        host.sh(f"mkdir -p /etc/docker && echo {shlex.quote(foreign)} > /etc/docker/daemon.json")
        succeeded(converge(host, role_vars))
        yield host
    finally:
        run_testbed("hosts", "stop", host.name, timeout=300)


def test_wrong_fingerprint_fails_before_any_source(
    fresh_host: Host, role_vars: dict[str, Any]
) -> None:
    wrong = "0123 4567 89AB CDEF 0123 4567 89AB CDEF 0123 4567"
    run = converge(fresh_host, {**role_vars, "docker_apt_key_fingerprint": wrong})

    assert run.result.status == "failed"
    (failure,) = run.result.failures
    assert failure.task == FINGERPRINT_TASK
    assert role_vars["docker_apt_key_fingerprint"] in failure.message
    assert "0123456789ABCDEF0123456789ABCDEF01234567" in failure.message
    assert not fresh_host.exists("/etc/apt/sources.list.d/docker.sources")
    assert not fresh_host.exists("/etc/apt/keyrings/docker.asc")
    assert fresh_host.sh("dpkg-query -W -f '${db:Status-Status}' docker-ce || true") != (
        "installed"
    )


def test_preflight_reports_every_problem_before_any_change(
    fresh_host: Host, role_vars: dict[str, Any]
) -> None:
    fresh_host.sh("mkdir -p /etc/docker && echo '[1, 2]' > /etc/docker/daemon.json")
    bad = {**role_vars, "docker_users": ["no-such-user"], "docker_apt_key_fingerprint": "12 34"}

    run = converge(fresh_host, bad)

    assert run.result.status == "failed"
    (failure,) = run.result.failures
    assert failure.task == "docker : Fail on what the role cannot do on this host"
    assert "no-such-user" in failure.message
    assert "'12 34'" in failure.message
    assert "/etc/docker/daemon.json must hold a JSON object" in failure.message
    assert run.result.changed == 0
    assert not fresh_host.exists("/etc/apt/keyrings/docker.asc")
    assert not fresh_host.exists("/etc/apt/sources.list.d/docker.sources")
    assert fresh_host.sh("cat /etc/docker/daemon.json") == "[1, 2]"


def dockerd_pid(host: Host) -> str:
    return host.sh("systemctl show --property MainPID --value docker")


def start_sleeper(host: Host, name: str) -> str:
    """Start a container that keeps running; its start time."""
    host.sh(
        "docker image inspect "
        + SLEEPER_IMAGE
        + " >/dev/null 2>&1 || { files=$(ldd /bin/sleep | grep -o '/[^ ]*' | sed 's#^/##'); "
        "tar --dereference -C / -cf - bin/sleep $files | docker import - " + SLEEPER_IMAGE + "; }"
    )
    host.sh(f"docker rm --force {name} >/dev/null 2>&1 || true")
    host.sh(f"docker run --detach --name {name} --network none {SLEEPER_IMAGE} /bin/sleep infinity")
    return container_started_at(host, name)


def container_started_at(host: Host, name: str) -> str:
    return host.sh(f"docker inspect --format '{{{{.State.StartedAt}}}}' {name}")


def container_running(host: Host, name: str) -> bool:
    return host.sh(f"docker inspect --format '{{{{.State.Running}}}}' {name}") == "true"


def daemon_json(host: Host) -> dict[str, Any]:
    document = json.loads(host.sh("cat /etc/docker/daemon.json"))
    assert isinstance(document, dict)
    return document


def test_noop_rerun_keeps_containers_running(converged: Host, role_vars: dict[str, Any]) -> None:
    started_at = start_sleeper(converged, "noop-witness")
    pid = dockerd_pid(converged)

    run = converge(converged, role_vars)

    succeeded(run)
    assert run.result.changed == 0
    assert run.count(RESTART_TASK, "changed") == 0
    assert dockerd_pid(converged) == pid
    assert container_running(converged, "noop-witness")
    assert container_started_at(converged, "noop-witness") == started_at


DEFAULT_DAEMON_OPTIONS = role_defaults()["docker_daemon_options"]


def test_changing_a_daemon_option_restarts_once(converged: Host, role_vars: dict[str, Any]) -> None:
    key, value = "max-concurrent-downloads", 4
    options = {**DEFAULT_DAEMON_OPTIONS, key: value}
    pid = dockerd_pid(converged)

    changed = converge(converged, {**role_vars, "docker_daemon_options": options})

    succeeded(changed)
    assert changed.count(RESTART_TASK, "changed") == 1
    assert dockerd_pid(converged) != pid
    config = daemon_json(converged)
    assert config[key] == value
    assert config[FOREIGN_KEY[0]] == FOREIGN_KEY[1], "a key the role does not own was lost"

    # The same options again: nothing to do, no restart.
    pid = dockerd_pid(converged)
    again = converge(converged, {**role_vars, "docker_daemon_options": options})
    succeeded(again)
    assert again.result.changed == 0
    assert again.count(RESTART_TASK, "changed") == 0
    assert dockerd_pid(converged) == pid

    # Dropping the option removes the key the role owned, keeps the foreign one, restarts once.
    back = converge(converged, role_vars)
    succeeded(back)
    assert back.count(RESTART_TASK, "changed") == 1
    config = daemon_json(converged)
    assert key not in config
    assert config[FOREIGN_KEY[0]] == FOREIGN_KEY[1]


def engine_debug(host: Host) -> str:
    """Whether the running dockerd has debug on (read from the daemon, not the file)."""
    return host.sh("docker info --format '{{.Debug}}'")


def test_a_lost_restart_is_made_up_by_the_next_run(
    converged: Host, role_vars: dict[str, Any]
) -> None:
    options = {**DEFAULT_DAEMON_OPTIONS, "debug": True}
    pid = dockerd_pid(converged)

    # daemon.json is written, then the run fails before its handlers (apt has no such
    # version): no restart happens.
    failed = converge(
        converged,
        {**role_vars, "docker_daemon_options": options, "docker_version": "9:99.0.0-no-such"},
    )
    assert failed.result.status == "failed"
    assert daemon_json(converged)["debug"] is True
    assert dockerd_pid(converged) == pid
    assert engine_debug(converged) == "false"

    # The next run has nothing to write, yet restarts the engine that runs the old file.
    made_up = converge(converged, {**role_vars, "docker_daemon_options": options})
    succeeded(made_up)
    assert made_up.count(RESTART_TASK, "changed") == 1
    assert engine_debug(converged) == "true"

    settled = converge(converged, {**role_vars, "docker_daemon_options": options})
    succeeded(settled)
    assert settled.result.changed == 0

    succeeded(converge(converged, role_vars))
    assert engine_debug(converged) == "false"
