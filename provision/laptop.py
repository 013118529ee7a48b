"""The laptop's own tools reach the VM: its engine through a forwarded socket and a docker
context, published ports through Vagrant's forwarded ports on 127.0.0.1.

The commands call these; the work is in :mod:`provision.tunnel` (ssh) and
:mod:`provision.docker_cli` (the docker CLI). Pure helpers (:func:`env_lines`,
:func:`ports_report`) are unit-tested.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from provision import docker_cli
from provision.errors import RunFailedError
from provision.output import Output
from provision.preflight import port_in_use
from provision.settings import MachineSettings
from provision.tunnel import Tunnel
from provision.vagrant import VagrantAdapter

ENV_HINT = 'eval "$(provision env)"'


def tunnel_for(adapter: VagrantAdapter) -> Tunnel:
    return Tunnel(adapter.dotfile_dir / "provision")


def ports_report(machine: MachineSettings) -> list[dict[str, Any]]:
    return [
        {"host_ip": "127.0.0.1", "host": host, "guest": guest, "protocol": "tcp"}
        for host, guest in machine.forwarded_ports()
    ]


def env_values(*, docker_host: str, context: str) -> dict[str, str]:
    """The variables ``provision env`` sets: ``DOCKER_HOST`` for every tool, and
    ``DOCKER_CONTEXT`` (same engine) when a context is configured."""
    values = {"DOCKER_HOST": docker_host}
    if context:
        values["DOCKER_CONTEXT"] = context
    return values


def env_lines(values: Mapping[str, str], *, syntax: str = "sh") -> list[str]:
    """Lines a shell evaluates: POSIX ``export`` (bash, zsh, sh) or fish's ``set -gx``."""
    if syntax == "fish":
        lines = [f"set -gx {name} {shlex.quote(value)};" for name, value in values.items()]
    else:
        lines = [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
    return [*lines, f"# run: {ENV_HINT}"]


def connect(
    out: Output, adapter: VagrantAdapter, *, project_dir: Path, use_context: bool
) -> dict[str, Any]:
    """Forward the engine's socket (again: the port and key may have changed) and create or
    update the context; return the ``docker`` part of the JSON document."""
    machine = adapter.machine
    tunnel = tunnel_for(adapter)
    out.step("docker for this machine")
    # A forward of Vagrant's that is not listening (its ssh to a guest still booting failed)
    # is carried by provision's own ssh forward instead.
    tunnel.stop()  # which may be carrying some of them since the last up
    missing = [(h, g) for h, g in machine.forwarded_ports() if not port_in_use(h)]
    for host, _guest in missing:
        out.warn(f"Vagrant did not forward 127.0.0.1:{host}; provision's ssh forward carries it")
    tunnel.start(adapter.ssh_config(), missing)
    name = machine.docker_context
    report: dict[str, Any] = {
        "host": tunnel.docker_host,
        "context": name or None,
        "context_action": None,
        "current": False,
        "ports": ports_report(machine),
        "share": machine.share or None,
    }
    for port in report["ports"]:
        out.info(f"  port {port['host_ip']}:{port['host']} -> guest port {port['guest']}")
    if machine.share:
        out.info(f"  {machine.share} is at the same path in the VM")
    if not name:
        out.info(f"  the VM's engine is at {tunnel.docker_host}: {ENV_HINT}")
        return report
    if not docker_cli.available():
        out.warn(docker_cli.INSTALL_HINT)
        return report
    change = docker_cli.ensure(
        name, host=tunnel.docker_host, description=f"provision VM of {project_dir}"
    )
    report["context_action"] = change.action
    if use_context:
        docker_cli.use(name)
    report["current"] = docker_cli.current() == name
    how = (
        "it is the current context: docker ps"
        if report["current"]
        else f"docker --context {name} ps, or docker context use {name}"
    )
    out.info(f"  docker context {name} ({change.action}): {how}")
    return report


def disconnect(adapter: VagrantAdapter, *, remove: bool) -> dict[str, Any]:
    """Stop the forward (``halt``); with ``remove`` (``destroy``) also remove its files and this
    project's context."""
    tunnel = tunnel_for(adapter)
    name = adapter.machine.docker_context
    if not remove:
        tunnel.stop()
        return {"forwarding": False}
    tunnel.remove()
    removed = (
        bool(name) and docker_cli.available() and docker_cli.remove(name, host=tunnel.docker_host)
    )
    return {"forwarding": False, "context": name or None, "context_removed": removed}


def describe(adapter: VagrantAdapter) -> dict[str, Any]:
    """What ``status`` shows: the context, whether the socket is forwarded, the ports."""
    tunnel = tunnel_for(adapter)
    name = adapter.machine.docker_context
    endpoint = docker_cli.endpoint(name) if name and docker_cli.available() else None
    return {
        "host": tunnel.docker_host,
        "forwarding": tunnel.running(),
        "context": name or None,
        "context_exists": endpoint == tunnel.docker_host,
        "ports": ports_report(adapter.machine),
        "share": adapter.machine.share or None,
    }


def require_forwarding(adapter: VagrantAdapter) -> Tunnel:
    tunnel = tunnel_for(adapter)
    if not tunnel.running():
        raise RunFailedError(
            "the VM's docker engine is not forwarded to this machine: run `provision up` first"
        )
    return tunnel
