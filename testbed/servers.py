"""The test bed's servers (repository, registry mirror): processes on the network's gateway
address, recorded in the state as NAME_pid, NAME_address and NAME_port. A restarted server keeps
its port, so hosts that are up keep valid sources and mirrors."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from testbed import network
from testbed.util import free_port, pid_alive, port_open, wait_until


def url(state: dict[str, Any], name: str) -> str | None:
    """http://ADDRESS:PORT of the server if it runs and answers, else None."""
    port, address = state.get(f"{name}_port"), state.get(f"{name}_address")
    if port and address and pid_alive(state.get(f"{name}_pid")) and port_open(port, address):
        return f"http://{address}:{port}"
    return None


def ensure(state: dict[str, Any], name: str, start: Callable[[str, int], int]) -> int:
    """The server's port: the running one, or ``start(address, port)`` (returns its pid) on the
    gateway, on the port it had before when that is free."""
    address = network.gateway(state)
    port = state.get(f"{name}_port")
    if url(state, name) == f"http://{address}:{port}":
        return int(port)
    stop(state, name, keep_port=True)
    if not port or port_open(port, address):
        port = free_port(address)
    pid = start(address, port)
    wait_until(lambda: port_open(port, address), timeout=30, what=f"the {name} server")
    state.update({f"{name}_port": port, f"{name}_pid": pid, f"{name}_address": address})
    return int(port)


def stop(state: dict[str, Any], name: str, *, keep_port: bool = False) -> None:
    pid = state.pop(f"{name}_pid", None)
    if pid_alive(pid):
        os.kill(pid, 15)
    state.pop(f"{name}_address", None)
    if not keep_port:
        state.pop(f"{name}_port", None)
