"""The test bed's own Docker bridge network: every host gets its own network namespace on it.

Hosts used to share the machine's network, so their engines had to run without a bridge and
without iptables. On this network each host's engine runs with Docker's defaults, in the host's
namespace. The machine sits at the network's gateway address, where the repository and the
registry mirror listen.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from typing import Any

from testbed.util import TestbedError, log, run

NAME = "provision-testbed"
BRIDGE = "ptb0"
LABEL = "provision.testbed"
# Tried in order; the first that overlaps nothing on this machine is used.
CANDIDATES = [f"10.213.{n}.0/24" for n in range(7, 255)]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _json(argv: list[str]) -> Any:
    probe = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    if probe.returncode != 0:
        return None
    return json.loads(probe.stdout or "null")


def machine_networks() -> list[Network]:
    """Every prefix this machine routes or holds an address in, and Docker's networks."""
    found: list[Network] = []
    for route in _json(["ip", "-j", "route", "show", "table", "all"]) or []:
        dst = route.get("dst", "")
        if dst and dst != "default" and ":" not in dst:
            found.append(ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False))
    for link in _json(["ip", "-j", "-4", "addr"]) or []:
        for addr in link.get("addr_info", []):
            found.append(ipaddress.ip_network(f"{addr['local']}/{addr['prefixlen']}", strict=False))
    names = subprocess.run(
        ["docker", "network", "ls", "-q"], capture_output=True, text=True, check=False
    ).stdout.split()
    inspected = _json(["docker", "network", "inspect", *names]) if names else None
    for info in inspected or []:
        for config in (info.get("IPAM") or {}).get("Config") or []:
            if config.get("Subnet"):
                found.append(ipaddress.ip_network(config["Subnet"], strict=False))
    return found


def choose_subnet(taken: list[Network]) -> ipaddress.IPv4Network:
    """The first candidate that overlaps none of ``taken``."""
    for text in CANDIDATES:
        candidate = ipaddress.IPv4Network(text)
        if not any(candidate.overlaps(net) for net in taken if net.version == 4):
            return candidate
    raise TestbedError("no free /24 in 10.213.0.0/16 for the test bed's network")


def inspect() -> dict[str, str] | None:
    """The network's subnet and gateway, or None when it does not exist."""
    info = _json(["docker", "network", "inspect", NAME])
    if not info:
        return None
    config = (info[0].get("IPAM") or {}).get("Config") or [{}]
    return {"name": NAME, "subnet": config[0]["Subnet"], "gateway": config[0]["Gateway"]}


def ensure(state: dict[str, Any]) -> dict[str, str]:
    """Create the network unless it exists; record it in the state."""
    current = inspect()
    if current is None:
        subnet = choose_subnet(machine_networks())
        gateway = str(next(subnet.hosts()))
        log(f"creating the test bed's network {NAME} ({subnet}, gateway {gateway})")
        run(
            [
                "docker", "network", "create", "--driver", "bridge",
                "--subnet", str(subnet), "--gateway", gateway,
                "--opt", f"com.docker.network.bridge.name={BRIDGE}",
                "--label", f"{LABEL}=1", NAME,
            ],
            capture=True,
        )  # fmt: skip
        current = inspect()
        if current is None:
            raise TestbedError(f"docker network {NAME} was created but cannot be inspected")
    state["network"] = current
    return current


def remove(state: dict[str, Any]) -> None:
    if inspect() is not None:
        run(["docker", "network", "rm", NAME], capture=True, check=False)
    state.pop("network", None)


def gateway(state: dict[str, Any]) -> str:
    net = state.get("network") or {}
    if not net.get("gateway"):
        raise TestbedError("the test bed's network is not set up: run `python -m testbed up`")
    return str(net["gateway"])
