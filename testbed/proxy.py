"""The test bed's forwarding proxy (Debian's squid) on the network's gateway address, and
hosts whose only way to the repository and the registry mirror is that proxy.

The proxy is a server like the others (servers.py: recorded as proxy_pid/_address/_port, a
restart keeps its port). Its access log (one line per request, with the URL) is world-readable,
so tests read which requests went through it. squid, not tinyproxy: tinyproxy 1.11 forwards only
one of a request's repeated Accept headers, and dockerd's manifest requests repeat it (the
registry then answered some pulls with a schema 1 manifest, and the pull fell back to Docker
Hub: measured)."""

from __future__ import annotations

import os
import pwd
from pathlib import Path
from typing import Any

from testbed import network, servers
from testbed.util import TestbedError, install_packages, missing_packages, run, spawn, state_dir

PACKAGES = ["squid"]
# The unprivileged user squid drops to (Debian's package creates it).
PROXY_USER = "proxy"
# Refused at once (not dropped): a converge that tries the direct route fails fast, naming it.
REJECT = ["-j", "REJECT", "--reject-with", "tcp-reset"]


def proxy_dir() -> Path:
    return state_dir() / "proxy"


def log_path() -> Path:
    return proxy_dir() / "access.log"


def config(address: str, port: int, subnet: str, directory: Path) -> str:
    """squid's configuration: the gateway address only, clients of the test bed's subnet only,
    nothing cached (each request reaches the servers, and the log), every request logged."""
    return "\n".join(
        [
            f"http_port {address}:{port}",
            f"acl bed src {subnet}",
            "acl SSL_ports port 443",
            "acl CONNECT method CONNECT",
            "http_access deny CONNECT !SSL_ports",
            "http_access allow bed",
            "http_access deny all",
            "cache deny all",
            f"access_log stdio:{directory}/access.log squid",
            f"cache_log {directory}/cache.log",
            f"pid_filename {directory}/squid.pid",
            f"coredump_dir {directory}",
            f"cache_effective_user {PROXY_USER}",
            "visible_hostname provision-testbed-proxy",
            "shutdown_lifetime 1 seconds",
            "logfile_rotate 0",
            "",
        ]
    )


def serve(state: dict[str, Any]) -> int:
    """The proxy's port: the running squid, or a new one on the gateway address."""
    if missing_packages(PACKAGES):
        install_packages(PACKAGES)

    def start(address: str, port: int) -> int:
        directory = proxy_dir()
        directory.mkdir(parents=True, exist_ok=True)
        user = pwd.getpwnam(PROXY_USER)
        os.chown(directory, user.pw_uid, user.pw_gid)
        for name in ("access.log", "cache.log"):
            (directory / name).touch()
            os.chown(directory / name, user.pw_uid, user.pw_gid)
            os.chmod(directory / name, 0o644)
        conf = directory / "squid.conf"
        conf.write_text(config(address, port, state["network"]["subnet"], directory))
        # -N: in the foreground, so that the recorded pid is squid's own.
        return spawn(["squid", "-N", "-f", str(conf)], log_file=directory / "stdout.log")

    return servers.ensure(state, "proxy", start)


def ensure(state: dict[str, Any]) -> str:
    """http://GATEWAY:PORT of the running proxy (started when it is not)."""
    network.gateway(state)
    serve(state)
    found = servers.url(state, "proxy")
    if not found:
        raise TestbedError("the proxy stopped right after it started: see " + str(log_path()))
    return found


def stop(state: dict[str, Any]) -> None:
    servers.stop(state, "proxy")


def egress_rules(gateway: str, ports: list[int]) -> list[tuple[str, list[str]]]:
    """(chain, rule) pairs that reject direct connections to PORTS on the gateway: from the host
    itself (OUTPUT) and from its containers (FORWARD)."""
    return [
        (
            chain,
            ["-p", "tcp", "-d", gateway, "--dport", str(port), *REJECT],
        )
        for chain in ("OUTPUT", "FORWARD")
        for port in ports
    ]


def block_direct(container: str, state: dict[str, Any]) -> None:
    """Only the proxy reaches the repository and the registry from CONTAINER: its own network
    namespace rejects direct connections to their ports. The machine's iptables binary, run in
    that namespace (the host images have none before docker-ce), leaves the machine's rules as
    they are."""
    pid = run(["docker", "inspect", "-f", "{{.State.Pid}}", container], capture=True).stdout
    in_netns = ["nsenter", "-t", pid.strip(), "-n", "iptables"]
    ports = [int(state[f"{name}_port"]) for name in ("repo", "registry")]
    for chain, rule in egress_rules(network.gateway(state), ports):
        if run([*in_netns, "-C", chain, *rule], capture=True, check=False).returncode != 0:
            run([*in_netns, "-I", chain, *rule], capture=True)
