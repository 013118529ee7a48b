"""Pure logic of the test bed: the network's subnet choice and Docker's docker.service form."""

from __future__ import annotations

import ipaddress

import pytest

from testbed import util
from testbed.debs import DOCKER_EXEC_START, docker_service
from testbed.network import CANDIDATES, choose_subnet

UBUNTU_UNIT = """[Unit]
Description=Docker Application Container Engine
After=network-online.target docker.socket firewalld.service
Wants=network-online.target
Requires=docker.socket

[Service]
Type=notify
EnvironmentFile=-/etc/default/docker
ExecStart=/usr/sbin/dockerd -H fd:// $DOCKER_OPTS
ExecReload=/bin/kill -s HUP $MAINPID
"""


def nets(*texts: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(t) for t in texts]


def test_the_first_candidate_when_nothing_collides() -> None:
    taken = nets("192.0.2.0/24", "172.17.0.0/16", "127.0.0.0/8", "fd00::/64")
    assert str(choose_subnet(taken)) == CANDIDATES[0] == "10.213.7.0/24"


def test_a_colliding_route_or_address_moves_it_on() -> None:
    # A host route inside the first /24, and a wider route over the second.
    taken = nets("10.213.7.9/32", "10.213.8.0/23")
    assert str(choose_subnet(taken)) == "10.213.10.0/24"


def test_no_free_candidate_is_one_clear_error() -> None:
    with pytest.raises(util.TestbedError, match="no free /24"):
        choose_subnet(nets("10.0.0.0/8"))


def test_docker_service_takes_dockers_exec_start_and_needs_containerd() -> None:
    unit = docker_service(UBUNTU_UNIT)
    assert [line for line in unit.splitlines() if line.startswith("ExecStart=")] == [
        DOCKER_EXEC_START
    ]
    assert "EnvironmentFile" not in unit
    assert "After=network-online.target docker.socket firewalld.service containerd.service" in unit
    assert "Wants=network-online.target containerd.service" in unit
    assert "ExecReload=/bin/kill -s HUP $MAINPID" in unit


def test_docker_service_without_ordering_lines_gets_them() -> None:
    unit = docker_service("[Unit]\nDescription=x\n\n[Service]\nExecStart=/usr/bin/dockerd\n")
    assert "After=containerd.service\nWants=containerd.service\n" in unit


def test_the_proxy_listens_on_the_gateway_for_the_subnet_alone() -> None:
    from pathlib import Path

    from testbed import proxy

    conf = proxy.config("10.213.7.1", 3128, "10.213.7.0/24", Path("/d")).splitlines()
    assert "http_port 10.213.7.1:3128" in conf
    # the bed's clients allowed, every other denied, after it
    assert conf.index("http_access allow bed") < conf.index("http_access deny all")
    assert "acl bed src 10.213.7.0/24" in conf
    assert "access_log stdio:/d/access.log squid" in conf


def test_a_proxied_host_rejects_direct_connections_to_the_servers_ports() -> None:
    from testbed import proxy

    rules = proxy.egress_rules("10.213.7.1", [8000, 5000])
    assert [(chain, rule[rule.index("--dport") + 1]) for chain, rule in rules] == [
        ("OUTPUT", "8000"),
        ("OUTPUT", "5000"),
        ("FORWARD", "8000"),
        ("FORWARD", "5000"),
    ]
    assert all(rule[-4:] == ["-j", "REJECT", "--reject-with", "tcp-reset"] for _c, rule in rules)
