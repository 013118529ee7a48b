"""A source other than Docker's that apt cannot fetch does not stop the role; Docker's own does.

On one fresh focal host with ``deb http://127.0.0.1:9/none focal main`` in sources.list.d (a PPA
that went away; refused at once on the host's own loopback, nothing leaves its namespace):

- with Docker's repository unreachable too (its URL on the same dead port, the key served on the
  host), the run fails at the install with one line naming Docker's list and apt's reason;
- with the test bed's repository, it converges (changed) with a warning naming the dead source,
  in the run's warnings (the recap and ``--json``); the next run is ``changed=0``.

Needs the test bed (``python -m testbed up``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.bed import bed_role_vars, ready_status, run_testbed
from tests.integration.test_role_docker import (
    Host,
    converge,
    fact_free,
    serve_on_host,
    start,
    succeeded,
)

pytestmark = pytest.mark.integration

DEAD = "http://127.0.0.1:9/none"
INSTALL_TASK = (
    "docker : Install the Docker packages (apt's lists read again first when the plan says so)"
)


@pytest.fixture(scope="module")
def role_vars() -> dict[str, Any]:
    ready_status()
    return fact_free(bed_role_vars())


@pytest.fixture(scope="module")
def dead_source_host(
    role_vars: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Host]:
    host = start(f"px-dead{os.getpid() % 100000}", tmp_path_factory.mktemp("dead"))
    try:
        host.sh(f"echo 'deb {DEAD} focal main' > /etc/apt/sources.list.d/gone.list")
        yield host
    finally:
        run_testbed("hosts", "stop", host.name, timeout=300)


def test_dockers_own_repository_unreachable_fails_naming_it(
    dead_source_host: Host, role_vars: dict[str, Any]
) -> None:
    key = dead_source_host.sh(f"curl -fsS {role_vars['docker_apt_repository_url']}/gpg")
    url = serve_on_host(dead_source_host, key.encode() + b"\n")
    try:
        run = converge(
            dead_source_host,
            {
                **role_vars,
                "docker_apt_repository_url": "http://127.0.0.1:9/linux/ubuntu",
                "docker_apt_key_url": url,
            },
        )
    finally:
        dead_source_host.sh("kill $(cat /root/keyserver.pid)")

    assert run.result.status == "failed"
    (failure,) = run.result.failures
    assert failure.task == INSTALL_TASK
    assert failure.message.startswith(
        "apt-get update failed: apt could not fetch Docker's repository"
        " http://127.0.0.1:9/linux/ubuntu/dists/focal/"
    ), failure.message
    assert "\n" not in failure.message
    assert dead_source_host.sh("dpkg-query -W -f '${db:Status-Status}' docker-ce || true") != (
        "installed"
    )


def test_a_dead_foreign_source_is_a_warning_and_the_install_goes_on(
    dead_source_host: Host, role_vars: dict[str, Any]
) -> None:
    first = converge(dead_source_host, role_vars)

    succeeded(first)
    assert first.result.changed > 0
    (warning,) = [w for w in first.result.warnings if DEAD in w]
    assert warning.startswith(f"apt could not fetch {DEAD}/dists/focal/InRelease ("), warning
    assert "a source other than Docker's" in warning
    assert dead_source_host.sh("docker version --format '{{.Server.Version}}'")
    again = converge(dead_source_host, role_vars)
    succeeded(again)
    assert again.result.changed == 0
