"""The one adapter on the laptop's own ``docker`` CLI: the context ``provision up`` makes.

Contexts live in the docker CLI's configuration directory (``$DOCKER_CONFIG``, default
``~/.docker``), so every call goes through the CLI itself: ``docker context inspect/create/update/
use/rm/show``. Nothing here talks to an engine. Without a docker CLI nothing is created and
:data:`INSTALL_HINT` says what to install; the forwarded socket works without one
(``provision env``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Final

from provision import proc

INSTALL_HINT: Final = (
    "no docker CLI on this machine: install one to use the context (Debian/Ubuntu: apt-get "
    "install docker-ce-cli or docker.io; macOS: brew install docker), then run `provision up` "
    'again; tools that read DOCKER_HOST work now: eval "$(provision env)"'
)


def available() -> bool:
    return shutil.which("docker") is not None


def _docker(*args: str, check: bool = False) -> tuple[int, str]:
    ran = proc.run(argv=["docker", *args], check=check, timeout=60)
    return ran.returncode, (ran.stdout or "").strip()


def endpoint(name: str) -> str | None:
    """The docker endpoint of context ``name``, or None when there is no such context."""
    code, out = _docker("context", "inspect", name, "--format", "{{.Endpoints.docker.Host}}")
    return out if code == 0 else None


def current() -> str:
    """The context the CLI uses now (``docker context show``)."""
    return _docker("context", "show", check=True)[1]


@dataclass(frozen=True)
class ContextChange:
    name: str
    host: str
    action: str  # created | updated | unchanged


def ensure(name: str, *, host: str, description: str) -> ContextChange:
    """Create context ``name`` pointing at ``host``, or point it there."""
    before = endpoint(name)
    option = f"host={host}"
    if before is None:
        _docker("context", "create", name, "--description", description, "--docker", option,
                check=True)  # fmt: skip
        return ContextChange(name, host, "created")
    if before != host:
        _docker("context", "update", name, "--description", description, "--docker", option,
                check=True)  # fmt: skip
        return ContextChange(name, host, "updated")
    return ContextChange(name, host, "unchanged")


def use(name: str) -> None:
    _docker("context", "use", name, check=True)


def remove(name: str, *, host: str) -> bool:
    """Remove context ``name`` when it points at ``host`` (another project's context of the
    same name is left alone); True when removed."""
    if endpoint(name) != host:
        return False
    _docker("context", "rm", "--force", name, check=True)
    return True
