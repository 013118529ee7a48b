"""Make sure this machine has the tools and a running Docker Engine."""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request

from testbed.util import TestbedError, install_packages, spawn, state_dir, wait_until

# Debian packages the test bed uses on the machine itself.
HOST_PACKAGES = [
    "docker.io",  # the outer engine that runs the host containers
    "debootstrap",  # real distribution userlands
    "gnupg",  # the throwaway repository key
    "docker-registry",  # the Docker Hub mirror
    "dpkg-dev",  # dpkg-scanpackages
    "apt-utils",  # apt-ftparchive release
    "openssh-client",
    "busybox-static",  # a long-running image for the walkthrough
    "gcc",
    "libc6-dev",  # static hello-world
    "curl",
]

MIN_FREE_GB = 8


def require_root() -> None:
    if os.geteuid() != 0:
        raise TestbedError("the test bed must run as root (it installs packages and runs dockerd)")


def require_disk() -> None:
    free_gb = shutil.disk_usage(state_dir()).free / 2**30
    if free_gb < MIN_FREE_GB:
        raise TestbedError(
            f"only {free_gb:.1f} GB free under {state_dir()}; the test bed needs {MIN_FREE_GB} GB"
        )


def require_archive(url: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=15):
            pass
    except OSError as exc:
        raise TestbedError(f"the package archive {url} is unreachable: {exc}") from exc


def docker_running() -> bool:
    return (
        subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=30).returncode
        == 0
    )


def ensure_dockerd() -> bool:
    """Start dockerd ourselves (this machine has no systemd as PID 1); True if we started it."""
    if docker_running():
        return False
    dockerd = shutil.which("dockerd")
    if not dockerd:
        raise TestbedError("dockerd is missing although docker.io is installed")
    spawn([dockerd], log_file=state_dir() / "dockerd.log")
    wait_until(docker_running, timeout=90, what="dockerd to answer")
    return True


def ensure_engine() -> bool:
    """Tools installed and dockerd answering; True if this call started dockerd."""
    require_root()
    require_disk()
    install_packages(HOST_PACKAGES)
    return ensure_dockerd()
