"""The one adapter on the system ``ssh`` for the laptop's docker CLI: the VM engine's socket
forwarded to a socket of this project.

``ssh -f -N -M -L LOCAL.sock:/var/run/docker.sock`` runs in the background as a control master
(``-S``), with the VM's own ``vagrant ssh-config`` written to ``.vagrant/provision/ssh_config``
(``-F``): the user's ``~/.ssh/config`` is neither read for it nor changed. ssh creates the local
socket with mode 0600 (``StreamLocalBindMask``), so only the laptop user reaches the engine, as
with a local engine's ``docker`` group, and no TCP port of the laptop exposes it. ``provision up``
(re)starts it with the current port and key, ``halt`` and ``destroy`` stop it (``-O exit``).

Why not an ``ssh://`` context: the docker CLI runs ``ssh [-l user] [-p port] -- HOST docker system
dial-stdio`` with no way to add ``-F`` or ``-i``, so the VM's port and key would have to be in the
user's own ssh configuration (OpenSSH reads it from the home directory of the passwd entry, not
``$HOME``): that means editing ``~/.ssh/config``. A ``unix://`` context works with every docker CLI
and every tool that reads ``DOCKER_HOST``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from provision import proc
from provision.errors import RunFailedError, UsageError
from provision.inventory import parse_ssh_config

log = logging.getLogger("provision.tunnel")

GUEST_SOCKET: Final = "/var/run/docker.sock"
# sun_path holds 108 bytes on Linux and 104 on macOS (with the terminating NUL).
MAX_SOCKET_PATH: Final = 103
SSH_HINT: Final = "install OpenSSH's client (Debian/Ubuntu: apt-get install openssh-client)"
START_TIMEOUT: Final = 90.0


@dataclass(frozen=True)
class Tunnel:
    """The forward of one project's VM, its files in ``state_dir`` (``.vagrant/provision``)."""

    state_dir: Path

    @property
    def ssh_config(self) -> Path:
        return self.state_dir / "ssh_config"

    @property
    def control(self) -> Path:
        return self.state_dir / "ssh.ctl"

    @property
    def socket(self) -> Path:
        return self.state_dir / "docker.sock"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "tunnel.log"

    @property
    def docker_host(self) -> str:
        """The endpoint for ``DOCKER_HOST`` and the docker context."""
        return f"unix://{self.socket}"

    def check_path(self) -> None:
        """Exit 2 when the socket's path is longer than a unix socket can have."""
        if len(os.fsencode(self.socket)) > MAX_SOCKET_PATH:
            raise UsageError(
                f"the project directory's path is too long for the docker socket {self.socket} "
                f"(at most {MAX_SOCKET_PATH} bytes): run provision in a shorter path, or set "
                'docker_context = "" in [machine]'
            )

    def _host(self) -> str:
        hosts = parse_ssh_config(self.ssh_config.read_text(encoding="utf-8"))
        return hosts[0].name

    def _ssh(self, *args: str, timeout: float = 30) -> tuple[int, str]:
        argv = ["ssh", "-F", str(self.ssh_config), "-S", str(self.control), *args]
        ran = proc.run(argv=argv, timeout=timeout, install_hint=SSH_HINT)
        return ran.returncode, (ran.stderr or "").strip()

    def start(self, ssh_config: str, ports: Sequence[tuple[int, int]] = ()) -> None:
        """Write the VM's ssh configuration and (re)start the forward; PORTS (host, guest) are
        forwarded by it too (the forwarded ports Vagrant did not bring up)."""
        self.check_path()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.stop()
        self.ssh_config.write_text(ssh_config, encoding="utf-8")
        self.ssh_config.chmod(0o600)
        self.log_file.write_text("", encoding="utf-8")
        code, stderr = self._ssh(
            "-f",
            "-N",
            "-M",
            "-E",
            str(self.log_file),
            "-o",
            "BatchMode=yes",
            "-o",
            "ExitOnForwardFailure=yes",
            "-o",
            "StreamLocalBindUnlink=yes",
            "-o",
            "StreamLocalBindMask=0177",
            "-o",
            "ServerAliveInterval=15",
            "-o",
            "ControlPersist=no",
            "-L",
            f"{self.socket}:{GUEST_SOCKET}",
            *[a for host, guest in ports for a in ("-L", f"127.0.0.1:{host}:127.0.0.1:{guest}")],
            self._host(),
            timeout=START_TIMEOUT,
        )
        if code != 0:
            logged = self.log_file.read_text(encoding="utf-8", errors="replace").strip()
            last = (logged or stderr).splitlines()[-1:] or [f"exit status {code}"]
            raise RunFailedError(
                f"could not forward the VM's docker socket over ssh: {last[0]}",
                detail=logged or stderr,
            )
        log.info("docker socket of the VM forwarded to %s", self.socket)

    def running(self) -> bool:
        """True when the forward's ssh master answers."""
        if not self.control.exists() or not self.ssh_config.is_file():
            return False
        code, _ = self._ssh("-O", "check", self._host())
        return code == 0

    def stop(self) -> None:
        """End the forward (if it runs) and remove its socket."""
        if self.control.exists() and self.ssh_config.is_file():
            self._ssh("-O", "exit", self._host())
        self.control.unlink(missing_ok=True)
        self.socket.unlink(missing_ok=True)

    def remove(self) -> None:
        """Stop, and remove the files (the VM is gone)."""
        self.stop()
        for path in (self.ssh_config, self.log_file):
            path.unlink(missing_ok=True)
