"""The test bed's fixtures are real: apt checks signatures, packages behave like Docker's,
and a plain `docker run hello-world` is served by the local mirror alone."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bed import REPO
from tests.testbed.conftest import SshHost, run_testbed, write_docker_source

pytestmark = pytest.mark.integration


def ubuntu_repo(fixtures: dict[str, object]) -> str:
    status = fixtures["status"]
    assert isinstance(status, dict)
    return f"{status['repository']}/linux/ubuntu"


def test_apt_trusts_the_throwaway_key(focal_host: SshHost, fixtures: dict[str, object]) -> None:
    repo = ubuntu_repo(fixtures)
    write_docker_source(focal_host, repo, f"{repo}/gpg")
    update = focal_host.run("sudo apt-get update 2>&1")
    assert "NO_PUBKEY" not in update.stdout
    assert "not signed" not in update.stdout
    policy = focal_host.run("apt-cache policy docker-ce").stdout
    assert "Candidate: 5:" in policy, policy
    fingerprint = focal_host.run(
        "gpg --show-keys --with-colons /etc/apt/keyrings/docker.asc"
        " | awk -F: '/^fpr/ {print $10; exit}'"
    ).stdout.strip()
    assert fingerprint == fixtures["docker_apt_key_fingerprint"]


def test_apt_refuses_a_repository_signed_by_another_key(
    focal_host: SshHost, fixtures: dict[str, object]
) -> None:
    repo = ubuntu_repo(fixtures)
    impostor = repo.replace("/linux/", "/impostor/linux/")
    # Our key, someone else's signature: apt must not use the index.
    write_docker_source(focal_host, impostor, f"{repo}/gpg")
    update = focal_host.run("sudo apt-get update 2>&1", check=False)
    assert update.returncode != 0 or "is not signed" in update.stdout
    assert "NO_PUBKEY" in update.stdout or "BADSIG" in update.stdout, update.stdout
    policy = focal_host.run("apt-cache policy docker-ce").stdout
    assert "Candidate: 5:" not in policy


def test_docker_ce_replaces_the_distributions_engine(
    focal_host: SshHost, fixtures: dict[str, object]
) -> None:
    repo = ubuntu_repo(fixtures)
    write_docker_source(focal_host, repo, f"{repo}/gpg")
    focal_host.run(
        "sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive "
        "apt-get install -y -qq docker.io"
    )
    install = focal_host.run(
        "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y docker-ce docker-ce-cli "
        "containerd.io docker-buildx-plugin docker-compose-plugin 2>&1"
    ).stdout
    removed = install.split("will be REMOVED:", 1)[1].split("The following", 1)[0].split()
    assert sorted(removed) == ["containerd", "docker.io", "runc"]
    states = focal_host.run(
        "dpkg-query -W -f='${Package} ${Status}\\n' docker.io containerd runc docker-ce "
        "containerd.io 2>/dev/null",
        check=False,
    ).stdout
    installed = {line.split()[0] for line in states.splitlines() if line.endswith(" installed")}
    assert installed == {"docker-ce", "containerd.io"}
    assert focal_host.run("systemctl is-active docker containerd").stdout.split() == [
        "active",
        "active",
    ]
    assert focal_host.run("readlink -f $(command -v runc)").stdout.strip() == "/usr/bin/runc"


def test_hello_world_comes_from_the_mirror_alone(
    focal_host: SshHost, fixtures: dict[str, object]
) -> None:
    repo = ubuntu_repo(fixtures)
    # What an air-gapped site writes: a plain-HTTP mirror off loopback is listed as insecure.
    daemon = json.dumps(
        {
            "registry-mirrors": fixtures["docker_registry_mirrors"],
            "insecure-registries": fixtures["docker_insecure_registries"],
        }
    )
    write_docker_source(focal_host, repo, f"{repo}/gpg")
    focal_host.run(f"echo {shlex.quote(daemon)} | sudo tee /etc/docker/daemon.json")
    focal_host.run(
        "sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive "
        "apt-get install -y -qq docker-ce docker-ce-cli containerd.io"
    )
    # Docker Hub's names resolve to loopback inside test-bed hosts: nothing leaves the machine.
    hub = focal_host.run("getent hosts registry-1.docker.io").stdout.split()[0]
    assert hub == "127.0.0.1"
    hello = focal_host.run("sudo docker run --rm hello-world 2>&1").stdout
    assert "Pulling from library/hello-world" in hello
    assert "Hello from Docker!" in hello
    # An image the mirror lacks cannot come from anywhere else.
    missing = focal_host.run("sudo timeout 60 docker pull alpine:3 2>&1", check=False)
    assert missing.returncode != 0


def test_hosts_answer_ansible_ping(fixtures: dict[str, object], tmp_path: Path) -> None:
    names = ["ping-a", "ping-b"]
    json.loads(run_testbed("hosts", "start", *(f"{n}=focal" for n in names)))
    try:
        inventory = tmp_path / "inventory.yml"
        inventory.write_text(run_testbed("hosts", "inventory", *names))
        ansible = Path(sys.executable).parent / "ansible"
        result = subprocess.run(
            [str(ansible), "all", "-i", str(inventory), "-m", "ansible.builtin.ping", "-o"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.count('"ping": "pong"') == len(names)
    finally:
        run_testbed("hosts", "stop", *names)
