"""The test bed's network and packages: every host in its own network namespace on the test bed's
bridge, servers on its gateway address only, a read-only mirror, Docker's package layout on
every release, and systemd 258+ hosts booting on this machine's cgroup v1."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed import aptrepo, debs, releases
from testbed.util import port_open
from tests.testbed.conftest import SshHost, run_testbed

pytestmark = pytest.mark.integration

STATE_DIR = Path(os.environ.get("PROVISION_TESTBED_DIR", "/var/lib/provision-testbed"))
DOCKER_EXEC_START = (
    "ExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock"
)


@pytest.fixture(scope="module")
def status() -> dict[str, Any]:
    document = json.loads(run_testbed("status"))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def pair() -> Iterator[dict[str, SshHost]]:
    """A focal and a resolute host (systemd 245 on cgroup v1, systemd 259 on its own cgroup2)."""
    names = {"netns-focal": "focal", "netns-resolute": "resolute"}
    started = json.loads(run_testbed("hosts", "start", *(f"{n}={r}" for n, r in names.items())))
    try:
        yield {
            names[h["name"]]: SshHost(h["name"], h["address"], h["user"], h["identity_file"])
            for h in started
        }
    finally:
        run_testbed("hosts", "stop", *names)


def machine_addresses() -> set[str]:
    probe = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True, check=True)
    links = json.loads(probe.stdout)
    return {a["local"] for link in links for a in link.get("addr_info", [])}


def test_each_host_has_its_own_address_on_the_network(
    pair: dict[str, SshHost], status: dict[str, Any]
) -> None:
    subnet = ipaddress.ip_network(status["network"]["subnet"])
    addresses = {host.address for host in pair.values()}
    assert len(addresses) == len(pair)
    for host in pair.values():
        assert ipaddress.ip_address(host.address) in subnet
        inside = host.run("ip -4 -o addr show scope global").stdout
        assert host.address in inside
        # Not the machine's namespace: none of the machine's own addresses is there.
        assert not any(f" {a}/" in inside for a in machine_addresses()), inside
        # sshd listens on the host's own port 22, as on any server.
        assert host.run("ss -Hltn 'sport = :22'").stdout.strip()


def test_hosts_reach_the_fixtures_on_the_gateway(
    pair: dict[str, SshHost], status: dict[str, Any]
) -> None:
    gateway = status["network"]["gateway"]
    assert status["repository"].startswith(f"http://{gateway}:")
    assert status["registry"].startswith(f"http://{gateway}:")
    for host in pair.values():
        host.run(f"curl -fsS -o /dev/null {status['repository']}/linux/ubuntu/gpg")
        host.run(f"curl -fsS -o /dev/null {status['registry']}/v2/")


def test_servers_listen_on_the_gateway_only(status: dict[str, Any]) -> None:
    for url in (status["repository"], status["registry"]):
        port = int(url.rsplit(":", 1)[1])
        assert port_open(port, status["network"]["gateway"])
        assert not port_open(port, "127.0.0.1"), f"{url} also answers on 127.0.0.1"


def test_the_mirror_refuses_writes(status: dict[str, Any]) -> None:
    url = f"{status['registry']}/v2/library/intruder/blobs/uploads/"
    request = urllib.request.Request(url, method="POST", data=b"")  # noqa: S310 - http://GATEWAY
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310
    assert refused.value.code in (405, 503), refused.value.code


def test_resolute_boots_on_its_own_cgroup2(pair: dict[str, SshHost]) -> None:
    machine_fs = subprocess.run(
        ["stat", "-fc", "%T", "/sys/fs/cgroup"], capture_output=True, text=True, check=True
    ).stdout.strip()
    for release, host in pair.items():
        booted = host.run("systemctl is-system-running --wait", check=False).stdout.strip()
        assert booted in ("running", "degraded"), f"{release}: {booted}"
        fs = host.run("stat -fc %T /sys/fs/cgroup").stdout.strip()
        # systemd 259 only runs on cgroup2; older ones keep the machine's hierarchy (and with it
        # memory limits).
        assert fs == ("cgroup2fs" if release == "resolute" else machine_fs), (release, fs)


def deb_of(status: dict[str, Any], release: str, package: str) -> Path:
    """The .deb of PACKAGE that apt installs from the repository: its newest version."""
    versions = aptrepo.published(releases.get(release), package)
    assert versions, f"{package} is not in the {release} repository"
    return versions[-1][1]


def deb_field(deb: Path, name: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True
    ).stdout.strip()


def deb_paths(deb: Path) -> set[str]:
    """The paths a package holds (files, directories, links), without the leading './'."""
    listing = subprocess.run(
        ["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    return {
        line.split(None, 5)[5].split(" -> ")[0].removeprefix("./") for line in listing.splitlines()
    }


def deb_text(deb: Path, path: str) -> str:
    tar = subprocess.run(
        ["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True
    ).stdout
    return subprocess.run(
        ["tar", "-xO", f"./{path}"], input=tar, capture_output=True, check=True
    ).stdout.decode()


@pytest.mark.parametrize("release", ["focal", "jammy", "noble", "resolute", "bookworm", "trixie"])
def test_packages_have_dockers_layout(status: dict[str, Any], release: str) -> None:
    assert release in status["releases_in_repository"]
    engine = deb_of(status, release, "docker-ce")
    cli = deb_of(status, release, "docker-ce-cli")
    engine_paths = deb_paths(engine)
    assert "usr/bin/dockerd" in engine_paths
    assert "usr/sbin/dockerd" not in engine_paths
    (unit_path,) = {
        "lib/systemd/system/docker.service",
        "usr/lib/systemd/system/docker.service",
    } & engine_paths
    unit = deb_text(engine, unit_path)
    exec_lines = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert exec_lines == [DOCKER_EXEC_START]
    assert "usr/bin/docker" in deb_paths(cli)
    depends = [d.split()[0] for d in deb_field(engine, "Depends").split(", ")]
    assert "iptables" in depends
    assert "docker-cli" not in depends
    for package in (engine, cli):
        conflicts = [c.split()[0] for c in deb_field(package, "Conflicts").split(", ")]
        assert {"docker.io", "docker-cli", "docker-engine"} <= set(conflicts)
        replaces = [r.split()[0] for r in deb_field(package, "Replaces").split(", ")]
        assert {"docker.io", "docker-cli"} <= set(replaces)


@pytest.mark.parametrize("release", ["focal", "jammy", "noble", "resolute", "bookworm", "trixie"])
def test_the_engine_comes_in_three_versions_of_one_payload(
    status: dict[str, Any], release: str
) -> None:
    """docker-ce and docker-ce-cli in three versions (two patches of an older series, then the
    distribution's own, newest): the same files and maintainer scripts (the postinst that
    restarts dockerd) under Docker's version numbers; the index is published by hash too."""
    assert release in status["releases_in_repository"]
    for package in ("docker-ce", "docker-ce-cli"):
        versions = aptrepo.published(releases.get(release), package)
        assert len(versions) >= 3, versions
        newest = versions[-1][1]
        for version, deb in versions:
            assert deb_field(deb, "Version") == version
            assert deb_paths(deb) == deb_paths(newest)
            assert debs.read_ar(deb)[2] == debs.read_ar(newest)[2]  # the data member
        older = [debs.upstream_version(v) for v, _ in versions[:-1]]
        assert older == debs.engine_versions(debs.upstream_version(versions[-1][0]))[:-1]
    engine = aptrepo.published(releases.get(release), "docker-ce")
    scripts = {
        subprocess.run(
            ["dpkg-deb", "--info", str(deb), "postinst"], capture_output=True, check=True
        ).stdout
        for _, deb in engine
    }
    assert len(scripts) == 1
    assert b"systemctl restart" in scripts.pop()
    dist = aptrepo.repo_root() / "linux" / releases.get(release).distro / "dists" / release
    assert "Acquire-By-Hash: yes" in (dist / "Release").read_text()
