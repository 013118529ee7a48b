"""The docker role on a host whose only way to Docker's repository and registry is a proxy.

The test bed's host (``hosts start --egress proxy``) rejects direct connections to the
repository's and the mirror's ports in its own network namespace; the test bed's squid on the
gateway forwards them and logs each request. On one such focal host, in order:

- without ``docker_proxy`` the run fails at the key download, with one line naming the URL, and
  nothing is written;
- with ``docker_proxy``, check mode writes nothing; then it converges (then ``changed=0``): the
  key, apt for Docker's repository (a role-owned apt.conf.d file scoped to that host) and
  dockerd (daemon.json ``proxies``) go through the proxy, whose log shows the key, the
  repository's lists and packages, and the registry; ``docker run hello-world`` as the user
  pulls through it;
- the user's ``~/.docker/config.json`` carries the proxy (the user's, 0600), and a ``docker
  build`` whose RUN fetches a URL gets it through the proxy (a container's direct connection is
  refused);
- a proxy-only change while a container runs with live-restore off stops before anything is
  written (the guarded restart); with live-restore on, dockerd restarts once and the container
  keeps running;
- a proxy password is in no output (``ansible-playbook -v --diff``, ``provision --json apply
  --check --diff``) and in no file others can read;
- with ``docker_proxy`` gone and apt configured for the proxy by someone else, the key download
  follows apt's proxy, and the role's apt file and daemon.json ``proxies`` go.

Needs the test bed (``python -m testbed up``; the proxy alone: ``python -m testbed proxy up``).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provision.paths import data_paths
from provision.runner import run_playbook
from tests.bed import REPO, bed_role_vars, provision_argv, ready_status, run_testbed
from tests.integration.test_role_docker import (
    FINGERPRINT_TASK,
    PLAN_TASK,
    RESTART_TASK,
    Host,
    container_running,
    container_started_at,
    converge,
    daemon_json,
    failed_at,
    start,
    start_sleeper,
    succeeded,
)

pytestmark = pytest.mark.integration

APT_PROXY_FILE = "/etc/apt/apt.conf.d/90docker-proxy"


@pytest.fixture(scope="module")
def role_vars() -> dict[str, Any]:
    ready_status()
    return bed_role_vars()


@pytest.fixture(scope="module")
def bed(role_vars: dict[str, Any]) -> dict[str, Any]:
    """The test bed's status with its proxy running (started when it is not)."""
    proc = run_testbed("proxy", "up", timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    status = ready_status()
    assert status["proxy"], status
    return status


@pytest.fixture(scope="module")
def proxied(bed: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    host = start(
        f"px-role{os.getpid() % 100000}", tmp_path_factory.mktemp("px"), "--egress", "proxy"
    )
    try:
        yield host
    finally:
        run_testbed("hosts", "stop", host.name, timeout=300)


def proxy_vars(role_vars: dict[str, Any], bed: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {**role_vars, "docker_proxy": {"http": bed["proxy"], **extra}}


def proxy_log(bed: dict[str, Any]) -> list[str]:
    return Path(bed["proxy_log"]).read_text(encoding="utf-8").splitlines()


def requests_from(lines: list[str], start_line: int) -> list[str]:
    """The URLs the proxy was asked for since START_LINE of its (squid) access log."""
    return [
        word
        for line in lines[start_line:]
        for word in line.split()
        if word.startswith(("http://", "https://"))
    ]


def test_without_the_proxy_the_key_download_fails_naming_the_url(
    proxied: Host, role_vars: dict[str, Any], bed: dict[str, Any]
) -> None:
    run = converge(proxied, role_vars)

    message = failed_at(run, FINGERPRINT_TASK)
    repository = bed["repository"]
    assert message.startswith(f"Could not download the repository key from {repository}/"), message
    assert "\n" not in message
    assert not proxied.exists("/etc/apt/keyrings/docker.asc")
    assert not proxied.exists("/etc/apt/sources.list.d/docker.sources")


def test_docker_proxy_takes_the_key_apt_and_the_pulls_through_the_proxy(
    proxied: Host, role_vars: dict[str, Any], bed: dict[str, Any]
) -> None:
    before = len(proxy_log(bed))
    paths = data_paths()
    checked = run_playbook(
        paths=paths,
        playbook=paths.site_playbook,
        inventory=proxied.inventory,
        extravars=proxy_vars(role_vars, bed),
        check=True,
        diff=True,
    )
    # Check mode downloads and verifies the key (through the proxy) and writes nothing.
    assert checked.status == "successful", checked.failures
    assert checked.changed > 0
    assert not proxied.exists(APT_PROXY_FILE)
    assert not proxied.exists("/etc/apt/keyrings/docker.asc")
    first = converge(proxied, proxy_vars(role_vars, bed))
    succeeded(first)
    assert first.result.changed > 0
    again = converge(proxied, proxy_vars(role_vars, bed))
    succeeded(again)
    assert again.result.changed == 0

    gateway = bed["network"]["gateway"]
    port = bed["repository"].rpartition(":")[2]
    assert proxied.sh(f"cat {APT_PROXY_FILE}").splitlines()[1] == (
        f'Acquire::http::Proxy::{gateway} "{bed["proxy"]}";'
    )
    assert proxied.sh(f"stat -c '%U:%G %a' {APT_PROXY_FILE}") == "root:root 644"
    # The distribution's apt configuration does not name the proxy (only Docker's host does).
    general = proxied.sh("apt-config dump | grep -i '^Acquire::https*::Proxy \"' || true")
    assert bed["proxy"] not in general
    assert daemon_json(proxied)["proxies"] == {"http-proxy": bed["proxy"]}
    out = proxied.sh(f"sudo -u {proxied.user} docker run --rm hello-world")
    assert "Hello from Docker!" in out

    asked = requests_from(proxy_log(bed), before)
    repository = f"http://{gateway}:{port}/linux/ubuntu"
    assert f"{repository}/gpg" in asked
    assert any(u.startswith(f"{repository}/dists/focal/") for u in asked), asked
    assert any(u.startswith(repository) and "/docker-ce_" in u for u in asked), asked
    registry = bed["registry"]
    assert any(u.startswith(f"{registry}/v2/library/hello-world/") for u in asked), asked


def test_a_docker_build_as_the_user_fetches_through_the_proxy(
    proxied: Host, bed: dict[str, Any]
) -> None:
    """The role's ~/.docker/config.json proxies reach a build's RUN (the host rejects direct
    connections from its containers too). The classic builder: BuildKit resolves FROM against
    the plain-HTTP mirror over https, a test-bed limit that has nothing to do with the proxy."""
    config = json.loads(proxied.sh(f"cat ~{proxied.user}/.docker/config.json"))
    assert config["proxies"]["default"] == {"httpProxy": bed["proxy"]}
    assert proxied.sh(f"stat -c '%U %a' ~{proxied.user}/.docker/config.json") == (
        f"{proxied.user} 600"
    )
    url = f"{bed['repository']}/linux/ubuntu/gpg"
    dockerfile = f"FROM busybox\\nRUN wget -q -O /gpg {url} && head -1 /gpg\\n"
    proxied.sh(
        f"mkdir -p /tmp/pxbuild && printf '{dockerfile}' > /tmp/pxbuild/Dockerfile"
        " && chmod -R a+rX /tmp/pxbuild"
    )
    before = len(proxy_log(bed))
    as_user = f"sudo -H -u {proxied.user} env DOCKER_BUILDKIT=0"
    proxied.sh(f"{as_user} docker pull -q busybox")
    out = proxied.sh(f"{as_user} docker build --no-cache -t pxbuild /tmp/pxbuild")
    assert "-----BEGIN PGP PUBLIC KEY BLOCK-----" in out
    assert url in requests_from(proxy_log(bed), before)
    # Straight to the repository, a container gets nothing.
    direct = proxied.sh(
        f"docker run --rm busybox wget -q -T 5 -O /dev/null {url} 2>&1; echo rc=$?", check=False
    )
    assert "rc=0" not in direct


def test_a_proxy_only_change_under_a_running_container_stops_before_writing(
    proxied: Host, role_vars: dict[str, Any], bed: dict[str, Any]
) -> None:
    start_sleeper(proxied, "pxsleeper")
    before = proxied.sh("sha256sum /etc/docker/daemon.json")
    try:
        run = converge(proxied, proxy_vars(role_vars, bed, no_proxy=["internal.example"]))
        message = failed_at(run, PLAN_TASK)
        assert "daemon.json changes proxies" in message
        assert "pxsleeper" in message
        assert proxied.sh("sha256sum /etc/docker/daemon.json") == before
    finally:
        proxied.sh("docker rm --force pxsleeper")


def test_with_live_restore_a_proxy_only_change_restarts_and_keeps_the_container(
    proxied: Host, role_vars: dict[str, Any], bed: dict[str, Any]
) -> None:
    live = {**proxy_vars(role_vars, bed), "docker_live_restore": True}
    succeeded(converge(proxied, live))  # live-restore is reloaded: nothing stops
    started = start_sleeper(proxied, "pxlive")
    dockerd = proxied.sh("systemctl show -p MainPID --value docker")
    try:
        changed = proxy_vars(role_vars, bed, no_proxy=["internal.example"])
        run = converge(proxied, {**changed, "docker_live_restore": True})
        succeeded(run)
        assert run.count(RESTART_TASK, "changed") == 1
        assert proxied.sh("systemctl show -p MainPID --value docker") != dockerd
        assert container_running(proxied, "pxlive")
        assert container_started_at(proxied, "pxlive") == started
        assert daemon_json(proxied)["proxies"]["no-proxy"] == "internal.example"
    finally:
        proxied.sh("docker rm --force pxlive")


SECRET = "S3cretPass42"
# Secrets others left on the host: a password in a daemon.json key, a docker login.
FOREIGN_SECRET = "F0reignCiToken7"
REGISTRY_LOGIN = "b3BzOnJlZ2lzdHJ5LXNlY3JldC05"  # base64 of ops:registry-secret-9


def test_a_proxy_password_is_in_no_output_and_no_file_others_read(
    proxied: Host, role_vars: dict[str, Any], bed: dict[str, Any], tmp_path: Path
) -> None:
    """ansible-playbook -v --diff (the role's own masking, not provision's) and provision --json
    apply --check --diff show the password nowhere; daemon.json, the apt file and config.json
    are readable by their reader alone; no world-readable file on the host holds it."""
    authed = bed["proxy"].replace("http://", f"http://pxuser:{SECRET}@")
    user = proxied.user
    # What others wrote holds secrets too: a daemon.json key with a URL's password (its mtime
    # kept before dockerd's start: no restart for it), the user's registry login.
    label = f"build=https://ci:{FOREIGN_SECRET}@ci.corp/job"
    daemon = json.loads(proxied.sh("cat /etc/docker/daemon.json"))
    proxied.put("/etc/docker/daemon.json", json.dumps({**daemon, "labels": [label]}).encode())
    proxied.sh("touch -d '2000-01-01' /etc/docker/daemon.json")
    login = {"auths": {"registry.corp": {"auth": REGISTRY_LOGIN}}}
    home = proxied.sh(f"getent passwd {user} | cut -d: -f6")
    proxied.sh(f"install -d -o {user} -g {user} -m 0700 {home}/.docker")
    proxied.put(f"{home}/.docker/config.json", json.dumps(login).encode())
    proxied.sh(f"chown {user}: {home}/.docker/config.json && chmod 0600 {home}/.docker/config.json")
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({**role_vars, "docker_proxy": {"http": authed}}), "utf-8")
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    playbook = [
        "ansible-playbook", "-i", str(proxied.inventory), str(REPO / "playbooks" / "site.yml"),
        "-e", f"@{extra}", "-v", "--diff",
    ]  # fmt: skip
    applied = subprocess.run(
        playbook, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert applied.returncode == 0, applied.stdout[-3000:] + applied.stderr[-2000:]
    assert "changed=0" not in applied.stdout
    for secret in (SECRET, FOREIGN_SECRET, REGISTRY_LOGIN):
        assert secret not in applied.stdout + applied.stderr
    assert "********" in applied.stdout  # the diffs and results show it masked
    checked = subprocess.run(
        [*provision_argv(), "--json", "-v", "apply", "-i", str(proxied.inventory),
         "-e", f"@{extra}", "--check", "--diff"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-2000:]
    for secret in (SECRET, FOREIGN_SECRET, REGISTRY_LOGIN):
        assert secret not in checked.stdout + checked.stderr
    # what others wrote is written back as it was, not masked
    assert json.loads(proxied.sh("cat /etc/docker/daemon.json"))["labels"] == [label]
    config = json.loads(proxied.sh(f"cat ~{user}/.docker/config.json"))
    assert config["auths"] == login["auths"]
    assert config["proxies"]["default"]["httpProxy"] == authed
    assert proxied.sh(f"stat -c '%U %a' /etc/docker/daemon.json {APT_PROXY_FILE}").split() == [
        "root", "600", "root", "600",
    ]  # fmt: skip
    assert proxied.sh(f"stat -c '%U %a' ~{user}/.docker/config.json") == f"{user} 600"
    assert SECRET in proxied.sh("cat /etc/docker/daemon.json")  # dockerd gets it
    readable = proxied.sh(
        "for d in / /var/lib/docker /var/lib/containerd; do find $d -xdev"
        " \\( -path /proc -o -path /sys \\) -prune -o -type f -perm -o=r -print0; done"
        f" | xargs -0 grep -lF {SECRET} 2>/dev/null || true"
    )
    assert readable == ""
    # dockerd pulls through the proxy with the credentials (squid here asks for none)
    proxied.sh("docker rmi -f hello-world >/dev/null")
    out = proxied.sh(f"sudo -u {user} docker run --rm hello-world")
    assert "Hello from Docker!" in out


def test_without_docker_proxy_the_key_download_follows_apts_own_proxy(
    proxied: Host, role_vars: dict[str, Any], bed: dict[str, Any]
) -> None:
    gateway = bed["network"]["gateway"]
    # Someone else's apt configuration: the proxy for the test bed's repository host.
    proxied.sh(
        f"echo 'Acquire::http::Proxy::{gateway} \"{bed['proxy']}\";'"
        " > /etc/apt/apt.conf.d/80site-proxy"
    )
    proxied.sh("rm /etc/apt/keyrings/docker.asc")
    before = len(proxy_log(bed))

    run = converge(proxied, role_vars)

    succeeded(run)
    assert f"{bed['repository']}/linux/ubuntu/gpg" in requests_from(proxy_log(bed), before)
    assert proxied.exists("/etc/apt/keyrings/docker.asc")
    assert not proxied.exists(APT_PROXY_FILE)
    assert "proxies" not in daemon_json(proxied)
    again = converge(proxied, role_vars)
    succeeded(again)
    assert again.result.changed == 0
