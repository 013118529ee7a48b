"""Fixtures for tests of the test bed itself: hosts started through `python -m testbed`."""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests import bed
from tests.bed import ssh_argv


def run_testbed(*args: str) -> str:
    result = bed.run_testbed(*args)
    if result.returncode != 0:
        pytest.fail(f"python -m testbed {' '.join(args)} failed: {result.stderr[-2000:]}")
    return result.stdout


@dataclass
class SshHost:
    name: str
    address: str
    user: str
    identity_file: str

    def run(
        self, command: str, *, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        argv = [*ssh_argv(self.address, self.identity_file, self.user), command]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            pytest.fail(f"{command!r} failed ({result.returncode}): {result.stderr[-2000:]}")
        return result


@pytest.fixture(scope="session")
def fixtures() -> dict[str, object]:
    """The running test bed's role variables (repository, key fingerprint, mirror)."""
    status = json.loads(run_testbed("status"))
    return {**json.loads(run_testbed("vars")), "status": status}


@pytest.fixture
def focal_host(request: pytest.FixtureRequest) -> Iterator[SshHost]:
    name = "fx-" + request.node.name.replace("_", "-")[-40:].strip("-").lower()
    info = json.loads(run_testbed("hosts", "start", f"{name}=focal"))[0]
    try:
        yield SshHost(name, info["address"], info["user"], info["identity_file"])
    finally:
        run_testbed("hosts", "stop", name)


def write_docker_source(host: SshHost, repository: str, key_url: str) -> None:
    """Docker's documented steps, by hand: key in /etc/apt/keyrings, a deb822 source."""
    source = (
        f"Types: deb\nURIs: {repository}\nSuites: focal\nComponents: stable\n"
        "Signed-By: /etc/apt/keyrings/docker.asc\n"
    )
    host.run(
        "sudo install -d -m 0755 /etc/apt/keyrings /etc/docker && "
        f"sudo curl -fsSL {shlex.quote(key_url)} -o /etc/apt/keyrings/docker.asc && "
        f"printf %s {shlex.quote(source)} | sudo tee /etc/apt/sources.list.d/docker.sources"
    )
