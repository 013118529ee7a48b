"""``vagrant ssh-config`` text → an Ansible inventory. Pure functions, no I/O.

Vagrant renders ``ssh-config`` from a fixed template (``templates/commands/ssh_config/config.erb``):
one ``Host`` block per machine with ``HostName``, ``User``, ``Port``, optional
``UserKnownHostsFile``/``StrictHostKeyChecking``, one ``IdentityFile`` per key (double-quoted when
the path has a space), ``IdentitiesOnly``, ``LogLevel``, and optionally ``ForwardAgent``,
``ForwardX11``, ``ProxyCommand``, ``Include``. Newer Vagrants add ``PubkeyAcceptedKeyTypes`` and
``HostKeyAlgorithms``. The parser follows ssh_config(5) syntax (``Key Value`` or ``Key=Value``,
keywords case-insensitive, ``#`` comments) rather than assuming one block.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from provision.errors import RunFailedError

# ssh options that only make sense for an interactive `vagrant ssh` or that would hide
# the error message Ansible reports for an unreachable host.
_SKIPPED_OPTIONS = frozenset({"loglevel", "forwardx11", "include"})


@dataclass(frozen=True)
class SshHost:
    """One ``Host`` block of ``vagrant ssh-config``."""

    name: str
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...] = ()
    options: Mapping[str, str] = field(default_factory=dict)  # other keywords, original case

    def ssh_args(self) -> list[str]:
        """``-o`` arguments for the remaining options (and any further identity files)."""
        args: list[str] = []
        for key, value in self.options.items():
            if key.lower() in _SKIPPED_OPTIONS:
                continue
            args += ["-o", f"{key}={value}"]
        for extra in self.identity_files[1:]:
            args += ["-i", extra]
        return args


def _split_line(line: str) -> tuple[str, str] | None:
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    # ssh_config(5): "keyword arguments" or "keyword=arguments".
    head, sep, rest = stripped.partition("=")
    if sep and not any(ch.isspace() for ch in head.strip()):
        key, value = head.strip(), rest.strip()
    else:
        parts = stripped.split(None, 1)
        key, value = parts[0], (parts[1].strip() if len(parts) > 1 else "")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return key, value


def parse_ssh_config(text: str) -> list[SshHost]:
    """Parse ``vagrant ssh-config`` output into one :class:`SshHost` per ``Host`` block."""
    blocks: list[tuple[str, list[tuple[str, str]]]] = []
    for raw in text.splitlines():
        parsed = _split_line(raw)
        if parsed is None:
            continue
        key, value = parsed
        if key.lower() == "host":
            blocks.append((value, []))
        elif blocks:
            blocks[-1][1].append((key, value))
        # lines before the first Host (Vagrant prints none) are ignored
    if not blocks:
        raise RunFailedError("vagrant ssh-config printed no Host block")
    return [_host_from_block(name, entries) for name, entries in blocks]


def _host_from_block(name: str, entries: Iterable[tuple[str, str]]) -> SshHost:
    hostname = ""
    user = ""
    port = 22
    identities: list[str] = []
    options: dict[str, str] = {}
    for key, value in entries:
        lowered = key.lower()
        if lowered == "hostname":
            hostname = value
        elif lowered == "user":
            user = value
        elif lowered == "port":
            try:
                port = int(value)
            except ValueError:
                raise RunFailedError(
                    f"vagrant ssh-config: host {name}: port {value!r} is not a number"
                ) from None
        elif lowered == "identityfile":
            identities.append(value)
        else:
            options[key] = value
    if not hostname:
        raise RunFailedError(f"vagrant ssh-config: host {name} has no HostName")
    return SshHost(
        name=name,
        hostname=hostname,
        port=port,
        user=user,
        identity_files=tuple(identities),
        options=options,
    )


def host_vars(host: SshHost) -> dict[str, Any]:
    """Ansible connection variables for one host."""
    hostvars: dict[str, Any] = {
        "ansible_host": host.hostname,
        "ansible_port": host.port,
    }
    if host.user:
        hostvars["ansible_user"] = host.user
    if host.identity_files:
        hostvars["ansible_ssh_private_key_file"] = host.identity_files[0]
    args = host.ssh_args()
    if args:
        hostvars["ansible_ssh_common_args"] = shlex.join(args)
    return hostvars


def to_inventory(hosts: Iterable[SshHost], *, group: str = "vagrant") -> dict[str, Any]:
    """An Ansible YAML/JSON inventory with every host in ``group`` (and so in ``all``)."""
    return {
        "all": {
            "children": {
                group: {"hosts": {host.name: host_vars(host) for host in hosts}},
            },
        },
    }


def inventory_from_ssh_config(text: str, *, group: str = "vagrant") -> dict[str, Any]:
    return to_inventory(parse_ssh_config(text), group=group)


def dump_inventory(inventory: Mapping[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(dict(inventory), sort_keys=False, default_flow_style=False)
