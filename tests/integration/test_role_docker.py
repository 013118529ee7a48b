"""Behaviour of the ``docker`` role that molecule's converge/idempotence/verify do not prove.

- playbooks/site.yml gathers no facts unless the role's variables use them (the test bed's
  repository URL does), and docker_users' default is the user sudo names on the host.
- A key whose fingerprint does not match, or Docker's key with a second key appended, fails the
  run before anything is written.
- Preflight names every problem it finds (unknown users, a malformed fingerprint, a daemon.json
  that is not an object) in one failure, before anything changes.
- A fresh converge restarts nothing and reports no restart; a no-op re-run does not restart the
  daemon: a container started before it still runs, with the same start time, under the same
  dockerd.
- A daemon.json change dockerd reloads is reloaded: same dockerd, the container keeps running.
- A change that needs a restart while a container runs stops the run before anything is written,
  naming the container and docker_restart_running_engine; with that variable it restarts once.
- Without containers, a change that needs a restart restarts exactly once; a key dropped from the
  role's options leaves daemon.json again, while a key the role does not own stays; a lost
  restart is made up by the next run.
- ``provision --json apply --check --diff`` carries daemon.json's diff in ``changes[].diff`` and
  changes nothing.
- docker_users is the whole list (a user dropped leaves the group, with a warning naming the
  process still holding it; docker_users_exclusive; ``[]``).
- A TCP listener needs TLS; a TLS one gets docker.service's drop-in and answers only clients with
  a certificate of its CA; dropped, it goes.
- Last on the converged host: docker_state=absent, refused under a container, then removing
  exactly what the role put there (containerd kept for another user of it).

Needs the test bed (``python -m testbed up``). The role runs through provision's one
ansible-runner adapter (and the ``provision`` CLI), against test-bed hosts over SSH.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from provision.paths import data_paths
from provision.role_options import role_defaults
from provision.runner import RunResult, TaskResult, run_playbook
from tests.bed import bed_role_vars, provision_argv, ready_status, run_testbed, ssh_argv

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
RESTART_TASK = "docker : Restart docker"
FINGERPRINT_TASK = "docker : Install Docker's verified key and apt source"
PLAN_TASK = "docker : Read the host and plan what to change"
DAEMON_TASK = "docker : Write daemon.json and the record of the keys the role owns"
# playbooks/site.yml's pre-task: facts only when the role's variables use them.
FACTS_TASK = "Gather the facts the role's variables (docker_*) use"
# A second OpenPGP key made by gpg (tests/unit/plugins/module_utils/data/README.md).
SECOND_KEY = REPO / "tests" / "unit" / "plugins" / "module_utils" / "data" / "second-key.asc"
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

    def put(self, path: str, data: bytes) -> None:
        """Write DATA to PATH on the host, as root."""
        argv = [
            *ssh_argv(self.address, self.identity_file, self.user),
            "sudo sh -c " + shlex.quote(f"cat > {shlex.quote(path)}"),
        ]
        proc = subprocess.run(argv, input=data, capture_output=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr


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


def failed_at(run: Run, task: str) -> str:
    """The message of the one failure of RUN, which must be at TASK and have changed nothing."""
    assert run.result.status == "failed"
    (failure,) = run.result.failures
    assert failure.task == task, failure.message
    assert run.result.changed == 0
    return failure.message


def succeeded(run: Run) -> None:
    failures = "; ".join(f"{f.task}: {f.message}" for f in run.result.failures)
    assert run.result.status == "successful", failures or run.result.error_lines


@pytest.fixture(scope="module")
def role_vars() -> dict[str, Any]:
    ready_status()
    return bed_role_vars()


def start(name: str, workdir: Path, *flags: str) -> Host:
    """A focal host started by the test bed (FLAGS: e.g. --egress proxy) and its inventory."""
    proc = run_testbed("hosts", "start", f"{name}=focal", *flags)
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
        first = converge(host, role_vars)
        succeeded(first)
        # The engine's first start uses daemon.json: nothing restarts, and nothing says so.
        assert first.count(RESTART_TASK, "changed") == 0
        assert not [t for t in first.tasks if "Restart docker" in t.task and t.status == "changed"]
        yield host
    finally:
        run_testbed("hosts", "stop", host.name, timeout=300)


def fact_free(role_vars: dict[str, Any]) -> dict[str, Any]:
    """The test bed's variables with its repository URL written out for Ubuntu (its printed form
    names ansible_distribution, a fact): what an inventory of a focal fleet holds."""
    url = str(role_vars["docker_apt_repository_url"])
    return {
        **role_vars,
        "docker_apt_repository_url": url.replace("{{ ansible_distribution | lower }}", "ubuntu"),
    }


def test_a_converge_without_facts_adds_the_user_sudo_names(
    fresh_host: Host, role_vars: dict[str, Any]
) -> None:
    """site.yml gathers no facts when no variable needs them, and docker_users' default is read
    on the host: with the login user named by the old alias ansible_ssh_user (so the role gets no
    ansible_user), the user sudo names joins the docker group."""
    inventory = json.loads(fresh_host.inventory.read_text(encoding="utf-8"))
    entry = inventory["all"]["hosts"][fresh_host.name]
    entry["ansible_ssh_user"] = entry.pop("ansible_user")
    fresh_host.inventory.write_text(json.dumps(inventory), encoding="utf-8")

    first = converge(fresh_host, fact_free(role_vars))

    succeeded(first)
    assert first.count(FACTS_TASK, "skipped") == 1
    assert fresh_host.user != "root"
    assert fresh_host.user in fresh_host.sh("getent group docker").split(":")[3].split(",")
    again = converge(fresh_host, fact_free(role_vars))
    succeeded(again)
    assert again.result.changed == 0
    assert again.count(FACTS_TASK, "skipped") == 1


def test_wrong_fingerprint_fails_before_any_source(
    fresh_host: Host, role_vars: dict[str, Any]
) -> None:
    wrong = "0123 4567 89AB CDEF 0123 4567 89AB CDEF 0123 4567"
    run = converge(fresh_host, {**role_vars, "docker_apt_key_fingerprint": wrong})

    message = failed_at(run, FINGERPRINT_TASK)
    assert role_vars["docker_apt_key_fingerprint"] in message
    assert "0123456789ABCDEF0123456789ABCDEF01234567" in message
    assert not fresh_host.exists("/etc/apt/sources.list.d/docker.sources")
    assert not fresh_host.exists("/etc/apt/keyrings/docker.asc")
    assert fresh_host.sh("dpkg-query -W -f '${db:Status-Status}' docker-ce || true") != (
        "installed"
    )


def serve_on_host(host: Host, body: bytes, port: int = 8765) -> str:
    """Serve BODY at /gpg from the host's own loopback (python3 -m http.server); its URL."""
    host.sh("mkdir -p /root/keyserver")
    host.put("/root/keyserver/gpg", body)
    host.sh(
        f"setsid python3 -m http.server {port} --bind 127.0.0.1 --directory /root/keyserver"
        " >/dev/null 2>&1 < /dev/null & echo $! > /root/keyserver.pid"
    )
    url = f"http://127.0.0.1:{port}/gpg"
    host.sh(
        f"for i in $(seq 50); do curl -fsS -o /dev/null {url} && exit 0; sleep 0.1; done; exit 1"
    )
    return url


def test_a_key_with_a_second_key_appended_is_refused_before_anything_is_written(
    fresh_host: Host, role_vars: dict[str, Any]
) -> None:
    repository = fact_free(role_vars)["docker_apt_repository_url"]
    dockers_key = fresh_host.sh(f"curl -fsS {repository}/gpg").encode() + b"\n"
    url = serve_on_host(fresh_host, dockers_key + SECOND_KEY.read_bytes())
    try:
        run = converge(fresh_host, {**role_vars, "docker_apt_key_url": url})
    finally:
        fresh_host.sh("kill $(cat /root/keyserver.pid)")

    message = failed_at(run, FINGERPRINT_TASK)
    assert f"The key downloaded from {url} holds 2 armored blocks, not one" in message
    assert not fresh_host.exists("/etc/apt/keyrings/docker.asc")
    assert not fresh_host.exists("/etc/apt/sources.list.d/docker.sources")
    assert fresh_host.sh("dpkg-query -W -f '${db:Status-Status}' docker-ce || true") != (
        "installed"
    )


def test_preflight_reports_every_problem_before_any_change(
    fresh_host: Host, role_vars: dict[str, Any]
) -> None:
    fresh_host.sh("mkdir -p /etc/docker && echo '[1, 2]' > /etc/docker/daemon.json")
    bad = {**role_vars, "docker_users": ["no-such-user"], "docker_apt_key_fingerprint": "12 34"}

    message = failed_at(converge(fresh_host, bad), PLAN_TASK)

    assert "no-such-user" in message
    assert "'12 34'" in message
    assert "/etc/docker/daemon.json must hold a JSON object" in message
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
    # The test bed's repository URL uses ansible_distribution: the facts are gathered for it.
    assert run.count(FACTS_TASK, "ok") == 1
    assert run.count(RESTART_TASK, "changed") == 0
    assert dockerd_pid(converged) == pid
    assert container_running(converged, "noop-witness")
    assert container_started_at(converged, "noop-witness") == started_at


DEFAULT_DAEMON_OPTIONS = role_defaults()["docker_daemon_options"]


def engine_info(host: Host, field: str) -> str:
    """A field of ``docker info`` (what the running dockerd uses, not what the file says)."""
    return host.sh(f"docker info --format '{{{{.{field}}}}}'")


def test_a_change_dockerd_reloads_keeps_containers_running(
    converged: Host, role_vars: dict[str, Any]
) -> None:
    converged.sh("docker rm --force $(docker ps --quiet) 2>/dev/null || true")
    started_at = start_sleeper(converged, "reload-witness")
    pid = dockerd_pid(converged)
    options = {**DEFAULT_DAEMON_OPTIONS, "debug": True}

    run = converge(converged, {**role_vars, "docker_daemon_options": options})

    succeeded(run)
    assert run.count(DAEMON_TASK, "changed") == 1
    assert run.count(RESTART_TASK, "changed") == 0
    assert dockerd_pid(converged) == pid
    assert engine_info(converged, "Debug") == "true"
    assert container_running(converged, "reload-witness")
    assert container_started_at(converged, "reload-witness") == started_at
    # The engine runs the file although it started before it: nothing left to do.
    again = converge(converged, {**role_vars, "docker_daemon_options": options})
    succeeded(again)
    assert again.result.changed == 0


def test_a_restart_under_a_running_container_needs_the_variable(
    converged: Host, role_vars: dict[str, Any]
) -> None:
    """Dropping `debug` needs a restart (dockerd's reload keeps a key that left the file)."""
    start_sleeper(converged, "reload-witness")
    before = converged.sh("md5sum /etc/docker/daemon.json")
    pid = dockerd_pid(converged)

    message = failed_at(converge(converged, role_vars), PLAN_TASK)

    assert "runs 1 container(s) that a restart stops (live-restore is off)" in message
    assert "reload-witness" in message
    assert "docker_restart_running_engine=true" in message
    assert converged.sh("md5sum /etc/docker/daemon.json") == before
    assert dockerd_pid(converged) == pid
    assert container_running(converged, "reload-witness")

    allowed = converge(converged, {**role_vars, "docker_restart_running_engine": True})

    succeeded(allowed)
    assert allowed.count(RESTART_TASK, "changed") == 1
    assert dockerd_pid(converged) != pid
    assert engine_info(converged, "Debug") == "false"
    assert "debug" not in daemon_json(converged)
    assert not container_running(converged, "reload-witness")


def test_changing_a_daemon_option_restarts_once(converged: Host, role_vars: dict[str, Any]) -> None:
    converged.sh("docker rm --force $(docker ps --quiet) 2>/dev/null || true")
    key, value = "log-opts", {"max-size": "20m", "max-file": "3"}
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

    # A key the role adds and then drops: it leaves daemon.json again, the foreign key stays.
    extra = {**DEFAULT_DAEMON_OPTIONS, "default-shm-size": "128M"}
    succeeded(converge(converged, {**role_vars, "docker_daemon_options": extra}))
    back = converge(converged, role_vars)
    succeeded(back)
    assert back.count(RESTART_TASK, "changed") == 1
    config = daemon_json(converged)
    assert "default-shm-size" not in config
    assert config["log-opts"] == DEFAULT_DAEMON_OPTIONS["log-opts"]
    assert config[FOREIGN_KEY[0]] == FOREIGN_KEY[1]


def test_a_lost_restart_is_made_up_by_the_next_run(
    converged: Host, role_vars: dict[str, Any]
) -> None:
    options = {**DEFAULT_DAEMON_OPTIONS, "log-driver": "local"}
    pid = dockerd_pid(converged)

    # daemon.json is written, then the run fails before the restart (apt has no such
    # version): no restart happens.
    failed = converge(
        converged,
        {**role_vars, "docker_daemon_options": options, "docker_version": "9:99.0.0-no-such"},
    )
    assert failed.result.status == "failed"
    assert daemon_json(converged)["log-driver"] == "local"
    assert dockerd_pid(converged) == pid
    assert engine_info(converged, "LoggingDriver") == "json-file"

    # The next run has nothing to write, yet restarts the engine that runs the old file.
    made_up = converge(converged, {**role_vars, "docker_daemon_options": options})
    succeeded(made_up)
    assert made_up.count(RESTART_TASK, "changed") == 1
    assert engine_info(converged, "LoggingDriver") == "local"

    settled = converge(converged, {**role_vars, "docker_daemon_options": options})
    succeeded(settled)
    assert settled.result.changed == 0

    succeeded(converge(converged, role_vars))
    assert engine_info(converged, "LoggingDriver") == "json-file"


def test_check_diff_shows_the_daemon_json_change_in_the_json_document(
    converged: Host, role_vars: dict[str, Any], tmp_path: Path
) -> None:
    options = {**DEFAULT_DAEMON_OPTIONS, "max-concurrent-downloads": 4}
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({**role_vars, "docker_daemon_options": options}), "utf-8")
    before = converged.sh("cat /etc/docker/daemon.json")

    proc = subprocess.run(
        [
            *provision_argv(),
            "--json",
            "apply",
            "-i",
            str(converged.inventory),
            "-e",
            f"@{extra}",
            "--check",
            "--diff",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )

    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    document = json.loads(proc.stdout)
    assert document["apply"]["check"] is True
    (change,) = [c for c in document["apply"]["changes"] if c["task"] == DAEMON_TASK]
    assert change["host"] == converged.name
    diff = change["diff"]
    assert "--- /etc/docker/daemon.json" in diff
    assert '+  "max-concurrent-downloads": 4,' in diff
    assert converged.sh("cat /etc/docker/daemon.json") == before


def test_stopped_means_the_socket_too(converged: Host, role_vars: dict[str, Any]) -> None:
    """With docker_service_state=stopped, docker.socket stops first: a connection to the socket
    would otherwise start dockerd again."""
    stopped = converge(converged, {**role_vars, "docker_service_state": "stopped"})
    succeeded(stopped)
    converged.sh("docker version >/dev/null 2>&1 || true")  # knocks on the socket
    assert converged.sh("systemctl is-active docker.socket docker || true").split() == [
        "inactive",
        "inactive",
    ]
    again = converge(converged, {**role_vars, "docker_service_state": "stopped"})
    succeeded(again)
    assert again.result.changed == 0

    started = converge(converged, role_vars)
    succeeded(started)
    assert converged.sh("systemctl is-active docker.socket docker").split() == ["active", "active"]


def group_members(host: Host) -> list[str]:
    return sorted(m for m in host.sh("getent group docker").split(":")[3].split(",") if m)


def test_docker_users_is_the_whole_list(converged: Host, role_vars: dict[str, Any]) -> None:
    """A user dropped from docker_users leaves the docker group, with a warning naming the
    process that still holds the group; a member the role was never told stays, unless
    docker_users_exclusive; an empty list then takes out the users the role was told."""
    login = converged.user
    converged.sh(
        "for u in alice bob carol; do id -u $u >/dev/null 2>&1 || useradd --no-create-home $u;"
        " done; gpasswd --add carol docker >/dev/null"
    )
    try:
        told = converge(converged, {**role_vars, "docker_users": [login, "alice", "bob"]})
        succeeded(told)
        assert group_members(converged) == sorted([login, "alice", "bob", "carol"])
        # bob's process, started while he is a member, holds the group after he leaves it
        converged.sh(
            "setsid setpriv --reuid bob --regid bob --init-groups sleep 600"
            " </dev/null >/dev/null 2>&1 &"
        )
        fewer_vars = {**role_vars, "docker_users": [login, "alice"]}
        fewer = converge(converged, fewer_vars)
        succeeded(fewer)
        assert group_members(converged) == sorted([login, "alice", "carol"])
        (warning,) = [w for w in fewer.result.warnings if "left the docker group" in w]
        assert warning.startswith("bob left the docker group, but 1 process(es)"), warning
        assert " sleep" in warning
        again = converge(converged, fewer_vars)
        succeeded(again)
        assert again.result.changed == 0

        exclusive = converge(converged, {**fewer_vars, "docker_users_exclusive": True})
        succeeded(exclusive)
        assert group_members(converged) == sorted([login, "alice"])
        nobody = converge(converged, {**role_vars, "docker_users": []})
        succeeded(nobody)
        assert group_members(converged) == []
        record = json.loads(converged.sh("cat /etc/ansible/facts.d/docker_users.fact"))
        assert record == {"users": []}
        assert converged.sh("stat -c '%a %U:%G' /etc/ansible/facts.d/docker_users.fact") == (
            "644 root:root"
        )
    finally:
        converged.sh("pkill -u bob || true; for u in alice bob carol; do userdel $u || true; done")
        succeeded(converge(converged, role_vars))
    assert login in group_members(converged)


@pytest.fixture
def login_mirror(role_vars: dict[str, Any], tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """The test bed's repository behind HTTP Basic authentication (testbed/loginrepo.py), on the
    test bed's gateway: (URL with the login, the password, the request log)."""
    from testbed.aptrepo import repo_root
    from testbed.util import free_port, port_open, wait_until

    base = urlsplit(role_vars["docker_apt_repository_url"])
    address = str(base.hostname)
    port = free_port(address)
    password = secrets.token_urlsafe(12)
    log = tmp_path / "requests.jsonl"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "testbed.loginrepo",
            "--bind",
            address,
            "--port",
            str(port),
            "--log",
            str(log),
            "--directory",
            str(repo_root()),
        ],
        cwd=REPO,
        env={**os.environ, "PROVISION_TESTBED_LOGIN": f"mirror:{password}"},
    )
    try:
        wait_until(lambda: port_open(port, address), timeout=30, what="the login mirror")
        url = f"http://mirror:{password}@{address}:{port}{base.path}"
        yield url, password, log
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_repository_login_goes_to_auth_conf_only(
    converged: Host,
    role_vars: dict[str, Any],
    login_mirror: tuple[str, str, Path],
    tmp_path: Path,
) -> None:
    """A repository URL with user:password@: the key is downloaded and apt reads the lists
    logged in; the password is in /etc/apt/auth.conf.d/docker.conf (root 0600) and nowhere
    else: not in docker.sources, not in provision's output with -v and --diff, not in the
    JSON document nor ansible-runner's artifacts. Without the login again, the file goes."""
    url, password, log = login_mirror
    plain = urlsplit(url)._replace(
        netloc=urlsplit(url).netloc.split("@")[1], path="/linux/ubuntu/gpg"
    )
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(plain.geturl(), timeout=10)  # noqa: S310 (the test bed's http URL)
    assert denied.value.code == 401
    converged.sh("rm /etc/apt/keyrings/docker.asc")  # so the key is downloaded from the mirror
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({**role_vars, "docker_apt_repository_url": url}), "utf-8")
    argv = [*provision_argv(), "--json", "-v", "--debug", "apply", "-i", str(converged.inventory)]
    proc = subprocess.run(
        [*argv, "-e", f"@{extra}", "--diff"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert password not in proc.stdout + proc.stderr
    document = json.loads(proc.stdout)
    assert document["apply"]["changed"] > 0
    kept = re.search(r"ansible-runner artifacts kept in (\S+)", proc.stderr)
    assert kept, proc.stderr[-2000:]
    artifacts = Path(kept.group(1))
    try:
        leaked = [p for p in (artifacts / "artifacts").rglob("*") if p.is_file()
                  and password.encode() in p.read_bytes()]  # fmt: skip
        assert leaked == []
    finally:
        shutil.rmtree(artifacts, ignore_errors=True)

    fetched = [json.loads(line) for line in log.read_text("utf-8").splitlines()]
    logged_in = {r["path"] for r in fetched if r["user"] == "mirror"}
    assert any(p.endswith("/gpg") for p in logged_in), fetched
    assert any("/dists/focal/" in p for p in logged_in), fetched
    source = converged.sh("cat /etc/apt/sources.list.d/docker.sources")
    assert password not in source
    assert "mirror:" not in source
    auth = "/etc/apt/auth.conf.d/docker.conf"
    assert converged.sh(f"stat -c '%a %U:%G' {auth}") == "600 root:root"
    assert f"login mirror password {password}" in converged.sh(f"cat {auth}")
    holding = converged.sh(f"grep -rl -- {shlex.quote(password)} /etc /var/lib/apt/lists || true")
    assert holding.split() == [auth]
    again = converge(converged, {**role_vars, "docker_apt_repository_url": url})
    succeeded(again)
    assert again.result.changed == 0

    without = converge(converged, role_vars)
    succeeded(without)
    assert not converged.exists(auth)


TLS_DIR = "/etc/docker/tls"
# A CA, a server certificate for 127.0.0.1 and a client certificate, made on the host itself.
MAKE_CERTS = f"""set -e
mkdir -p {TLS_DIR} && cd {TLS_DIR} && umask 077
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout ca-key.pem -out ca.pem
for who in server client; do
  openssl req -newkey rsa:2048 -nodes -subj /CN=$who -keyout $who-key.pem -out $who.csr
done
printf 'subjectAltName=IP:127.0.0.1\\n' > server.ext
printf 'extendedKeyUsage=clientAuth\\n' > client.ext
for who in server client; do
  openssl x509 -req -days 2 -in $who.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \\
    -extfile $who.ext -out $who.pem
done
chmod 0644 ca.pem server.pem
"""
TLS_OPTIONS = {
    "hosts": ["tcp://127.0.0.1:2376"],
    "tlsverify": True,
    "tlscacert": f"{TLS_DIR}/ca.pem",
    "tlscert": f"{TLS_DIR}/server.pem",
    "tlskey": f"{TLS_DIR}/server-key.pem",
}
OVER_TCP = f"docker -H tcp://127.0.0.1:2376 --tlsverify --tlscacert {TLS_DIR}/ca.pem"
WITH_CLIENT_CERT = f"{OVER_TCP} --tlscert {TLS_DIR}/client.pem --tlskey {TLS_DIR}/client-key.pem"


def remove_containers(host: Host) -> None:
    host.sh('ids=$(docker ps -aq); [ -z "$ids" ] || docker rm --force $ids >/dev/null')


def test_a_network_listener_needs_tls_and_gets_its_drop_in(
    converged: Host, role_vars: dict[str, Any]
) -> None:
    """An unauthenticated TCP listener stops the run before anything changes; a TLS one
    (client verification) gets docker.service's drop-in without -H fd://, answers only clients
    with a certificate of its CA, and the unix socket keeps working; dropped again, the drop-in
    and the listener go."""
    host = converged
    remove_containers(host)  # a host without workloads: the restarts need no override
    options = dict(DEFAULT_DAEMON_OPTIONS)
    open_listener = {**options, "hosts": ["tcp://0.0.0.0:2375"]}
    before = host.sh("cat /etc/docker/daemon.json")
    refused = converge(host, {**role_vars, "docker_daemon_options": open_listener})
    assert "opens the daemon to the network" in failed_at(refused, PLAN_TASK)
    assert host.sh("cat /etc/docker/daemon.json") == before

    host.sh(MAKE_CERTS)  # openssl came with ca-certificates
    tls_vars = {**role_vars, "docker_daemon_options": {**options, **TLS_OPTIONS}}
    listening = converge(host, tls_vars)
    succeeded(listening)
    assert listening.count(RESTART_TASK, "changed") == 1
    dropin = host.sh("cat /etc/systemd/system/docker.service.d/provision-hosts.conf")
    assert "ExecStart=\nExecStart=/usr/bin/dockerd --containerd=" in dropin
    assert host.sh(f"{WITH_CLIENT_CERT} version --format '{{{{.Server.Os}}}}'") == "linux"
    assert host.sh(f"{OVER_TCP} version >/dev/null 2>&1 && echo open || echo refused") == (
        "refused"
    )
    assert host.sh("docker version --format '{{.Server.Os}}'") == "linux"  # the unix socket
    again = converge(host, tls_vars)
    succeeded(again)
    assert again.result.changed == 0

    closed = converge(host, role_vars)
    succeeded(closed)
    assert closed.count(RESTART_TASK, "changed") == 1
    assert not host.exists("/etc/systemd/system/docker.service.d/provision-hosts.conf")
    assert host.sh(f"{WITH_CLIENT_CERT} version >/dev/null 2>&1 && echo open || echo closed") == (
        "closed"
    )
    assert host.sh("docker version --format '{{.Server.Os}}'") == "linux"


def test_absent_takes_back_what_the_role_put_there_and_nothing_else(
    converged: Host, role_vars: dict[str, Any]
) -> None:
    """docker_state=absent on the converged host (its last test): refused while a container
    runs; then Docker's
    packages, source, key and the records go; daemon.json keeps only the key the role did not
    own; the users the role was told leave the docker group and a member it was never told
    stays; docker_purge_data deletes /var/lib/docker, while containerd.io and /var/lib/containerd
    stay, as a containerd configuration that is not containerd.io's says another user has them.
    A re-run changes nothing."""
    host, login = converged, converged.user  # the last test of this host: Docker goes
    remove_containers(host)
    assert daemon_json(host)[FOREIGN_KEY[0]] == FOREIGN_KEY[1]  # written before its converge
    host.sh("id -u carol >/dev/null 2>&1 || useradd --no-create-home carol")
    host.sh("gpasswd --add carol docker >/dev/null")
    assert group_members(host) == sorted([login, "carol"])

    absent_vars = {**role_vars, "docker_state": "absent", "docker_purge_data": True}
    # the guard docker_state=present has: a running container stops the removal
    start_sleeper(host, "absent-witness")
    refused = converge(host, absent_vars)
    assert "docker_state=absent removes the engine" in failed_at(refused, PLAN_TASK)
    assert container_running(host, "absent-witness")
    host.sh("docker rm --force absent-witness >/dev/null")
    # a containerd configuration that is not containerd.io's (a Kubernetes node's CRI)
    host.sh("echo '# enabled by the cluster' >> /etc/containerd/config.toml")

    removed = converge(host, absent_vars)

    succeeded(removed)
    (kept,) = [w for w in removed.result.warnings if "docker_state=absent keeps" in w]
    assert kept.startswith("docker_state=absent keeps containerd.io and /var/lib/containerd")
    assert "/etc/containerd/config.toml is not containerd.io's" in kept
    assert host.exists("/var/lib/containerd")
    # emptied: a test-bed host has it as a volume, a mount point the role leaves in place
    assert host.sh("ls -A /var/lib/docker 2>/dev/null || true") == ""
    assert host.sh("dpkg-query -W -f '${Status}' containerd.io") == "install ok installed"
    assert host.sh("dpkg-query -W -f '${Status}' docker-ce 2>/dev/null || true") in (
        "",
        "deinstall ok config-files",
        "unknown ok not-installed",
    )
    for path in (
        "/etc/apt/sources.list.d/docker.sources",
        "/etc/apt/keyrings/docker.asc",
        "/etc/ansible/facts.d/docker.fact",
        "/etc/ansible/facts.d/docker_users.fact",
    ):
        assert not host.exists(path), path
    assert json.loads(host.sh("cat /etc/docker/daemon.json")) == dict([FOREIGN_KEY])
    assert host.sh("stat -c '%a %U:%G' /etc/docker/daemon.json") == "644 root:root"
    assert group_members(host) == ["carol"]
    again = converge(host, absent_vars)
    succeeded(again)
    assert again.result.changed == 0
