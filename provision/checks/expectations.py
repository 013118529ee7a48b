"""What the shared host checks expect of a Docker host, and where that comes from.

The expectations come from a JSON file named by the environment variable
``PROVISION_CHECKS_EXPECT`` (molecule's verifier, ``provision verify`` and the end-to-end tests
write it). Every key is optional; a missing key, or no file at all, means the role's default:

``users``            users that must be in the ``docker`` group and run containers without sudo
                     (default: the user the checks connect as, unless that is root)
``key_fingerprint``  fingerprint of /etc/apt/keyrings/docker.asc (default: Docker's release key)
``daemon_options``   keys and values /etc/docker/daemon.json must hold besides what the role's
                     own record on the host says it owns (default: nothing more; give the
                     ``docker_daemon_options`` the run passed to compare their values)
``packages``         packages that must be installed (default: Docker's five)
``network_url``      a URL a container on the default bridge must fetch (default: Docker's
                     download site; give an address, not a name, where containers' DNS differs)
``network_image``    the image those network checks run: ``wget`` and ``httpd`` (default busybox)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXPECT_ENV = "PROVISION_CHECKS_EXPECT"

# Docker's published release-key fingerprint (the role's docker_apt_key_fingerprint default).
DOCKER_KEY_FINGERPRINT = "9DC858229FC7DD38854AE2D88D81803C0EBFCD88"
DEFAULT_PACKAGES = (
    "docker-ce",
    "docker-ce-cli",
    "containerd.io",
    "docker-buildx-plugin",
    "docker-compose-plugin",
)
# What a container on the default bridge fetches to prove it reaches the network.
DEFAULT_NETWORK_URL = "https://download.docker.com/"
DEFAULT_NETWORK_IMAGE = "busybox"
# Docker's list of unofficial packages that conflict with its own, and Debian 13's docker-cli (the
# role's docker_conflicting_packages; none may be installed).
CONFLICTING_PACKAGES = (
    "docker.io",
    "docker-doc",
    "docker-compose",
    "docker-compose-v2",
    "podman-docker",
    "containerd",
    "runc",
    "docker-cli",
)


def normalize_fingerprint(value: str) -> str:
    """Fingerprint without spaces, upper case (the role accepts both spellings)."""
    return "".join(value.split()).upper()


@dataclass(frozen=True)
class Expectations:
    """What the checks expect of a Docker host."""

    # None: whom the role put in the docker group on its last run (its record on the host: the
    # one resolution of docker_users' default), else the user the checks connect as.
    users: tuple[str, ...] | None = None
    key_fingerprint: str = DOCKER_KEY_FINGERPRINT
    daemon_options: dict[str, Any] = field(default_factory=dict)
    packages: tuple[str, ...] = DEFAULT_PACKAGES
    network_url: str = DEFAULT_NETWORK_URL
    network_image: str = DEFAULT_NETWORK_IMAGE

    def to_json(self) -> str:
        """The file format ``load`` reads (``users`` left out when it is the default)."""
        data: dict[str, Any] = {
            "key_fingerprint": self.key_fingerprint,
            "daemon_options": self.daemon_options,
            "packages": list(self.packages),
            "network_url": self.network_url,
            "network_image": self.network_image,
        }
        if self.users is not None:
            data["users"] = list(self.users)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"


def load(path: str | None = None) -> Expectations:
    """Read the expectations file (``$PROVISION_CHECKS_EXPECT`` unless ``path`` is given)."""
    location = path if path is not None else os.environ.get(EXPECT_ENV, "")
    if not location:
        return Expectations()
    data = json.loads(Path(location).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        msg = f"{location}: expected a JSON object"
        raise TypeError(msg)
    defaults = Expectations()
    users = data.get("users")
    return Expectations(
        users=tuple(str(u) for u in users) if users is not None else None,
        key_fingerprint=normalize_fingerprint(
            str(data.get("key_fingerprint") or defaults.key_fingerprint)
        ),
        daemon_options=dict(data.get("daemon_options") or defaults.daemon_options),
        packages=tuple(str(p) for p in data.get("packages") or defaults.packages),
        network_url=str(data.get("network_url") or defaults.network_url),
        network_image=str(data.get("network_image") or defaults.network_image),
    )
