"""The machine's own Docker after the whole suite (scripts/test runs this stage last): docker0
still has the address it had when the test bed started the engine, the machine's iptables rules
that name docker0 are the ones recorded then, and a container on the default network runs.

The test-bed hosts each have their own network namespace, so nothing an inner engine does can
reach the machine's docker0; this proves it after the fact.
"""

from __future__ import annotations

import ipaddress
import subprocess

import pytest

from testbed import machine, registry

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def recorded() -> dict[str, list[str]]:
    taken = machine.recorded()
    if taken is None:
        pytest.fail(f"no snapshot in {machine.snapshot_file()}: run `python -m testbed up` first")
    return taken


def test_docker0_keeps_its_address(recorded: dict[str, list[str]]) -> None:
    assert recorded["addresses"], "docker0 had no address when the test bed started"
    assert machine.bridge_addresses() == recorded["addresses"]


def test_docker0_rules_are_unchanged(recorded: dict[str, list[str]]) -> None:
    assert recorded["rules"], "no iptables rule named docker0 when the test bed started"
    assert machine.bridge_rules() == recorded["rules"]


def test_a_container_runs_on_the_default_network(recorded: dict[str, list[str]]) -> None:
    # A test-bed image built on this machine: nothing is pulled.
    ran = subprocess.run(
        ["docker", "run", "--rm", registry.LOCAL_BUSYBOX, "ip", "-4", "-o", "addr", "show", "eth0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    address = ipaddress.ip_interface(ran.stdout.split()[3])
    bridge = ipaddress.ip_interface(recorded["addresses"][0])
    assert address.ip in bridge.network, f"{address} is not on docker0 ({bridge})"
