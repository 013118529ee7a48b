"""Hosts on demand: systemd containers of real userlands, each in its own network namespace on
the test bed's network (testbed/network.py), with sshd on port 22 of its own address."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from testbed import images, network, releases
from testbed.util import (
    TestbedError,
    output,
    port_open,
    run,
    state_dir,
    wait_until,
)

PREFIX = "ptb-"
LABEL = "provision.testbed"

# Names a fixture miss would otherwise send off the machine: fail fast on loopback instead.
BLACKHOLED = [
    "registry-1.docker.io",
    "auth.docker.io",
    "index.docker.io",
    "production.cloudflare.docker.com",
    "download.docker.com",
]

SSH_PORT = 22

# The one definition of how a test-bed host container runs (molecule uses it too, through
# `python -m testbed hosts start`). `--privileged` fails on this machine; these flags do not.
# Each host has its own network namespace on the test bed's network: its engine creates its
# own docker0 and iptables rules there, with Docker's default configuration.
CONTAINER_FLAGS = [
    "--network",
    network.NAME,
    "--cap-add",
    "ALL",
    "--cap-drop",
    "SYS_RESOURCE",
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "apparmor=unconfined",
    # The inner engine writes /proc/sys to set up container networking.
    "--security-opt",
    "systempaths=unconfined",
    "--device-cgroup-rule",
    "a *:* rwm",
    "--cgroupns",
    "private",
    "--tmpfs",
    "/run",
    "--tmpfs",
    "/run/lock",
]

SSHD_CONFIG = """# Written by the provision test bed: keys only, no reverse lookups of the machine.
PasswordAuthentication no
UseDNS no
"""


@dataclass
class Host:
    name: str
    release: str
    address: str
    port: int
    user: str
    identity_file: str


def ssh_key() -> Path:
    key = state_dir() / "ssh" / "id_ed25519"
    if not key.exists():
        key.parent.mkdir(mode=0o700, exist_ok=True)
        run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "provision-testbed",
                "-f",
                str(key),
            ]
        )
    return key


def container(name: str) -> str:
    return PREFIX + name


def seed_archive(public_key: str) -> bytes:
    """A tar of the per-host files, copied in before the first boot."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:

        def add(path: str, data: bytes | None, mode: int, uid: int = 0) -> None:
            info = tarfile.TarInfo(path)
            info.uid = info.gid = uid
            info.mode = mode
            info.mtime = int(time.time())
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

        home = f"home/{images.LOGIN_USER}"
        add("etc/ssh/sshd_config.d/testbed.conf", SSHD_CONFIG.encode(), 0o644)
        add(f"{home}/.ssh", None, 0o700, images.LOGIN_UID)
        add(f"{home}/.ssh/authorized_keys", public_key.encode(), 0o600, images.LOGIN_UID)
    return buffer.getvalue()


def inspect(name: str) -> dict[str, str] | None:
    """The host container's labels, ``running`` ("true"/"false") and ``address`` on the test
    bed's network ("" while it has none); None when there is no such container."""
    template = "{{json .Config.Labels}}|{{.State.Running}}|{{json .NetworkSettings.Networks}}"
    probe = subprocess.run(
        ["docker", "inspect", "-f", template, container(name)],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return None
    labels, running, networks = probe.stdout.strip().split("|", 2)
    attached = (json.loads(networks) or {}).get(network.NAME) or {}
    return {**json.loads(labels), "running": running, "address": attached.get("IPAddress") or ""}


def ssh_argv(
    address: str,
    identity_file: str | Path,
    user: str = images.LOGIN_USER,
    port: int = SSH_PORT,
) -> list[str]:
    """ssh to a test-bed host (add the remote command). Its keys are not pinned: hosts are
    created and thrown away."""
    return [
        "ssh", "-i", str(identity_file), "-p", str(port), "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", f"{user}@{address}",
    ]  # fmt: skip


def ssh_ready(address: str, key: Path) -> bool:
    probe = subprocess.run(
        [*ssh_argv(address, key), "true"], capture_output=True, check=False, timeout=20
    )
    return probe.returncode == 0


def address_of(name: str) -> str:
    return (inspect(name) or {}).get("address", "")


def create(name: str, codename: str, key: Path) -> None:
    """Create and boot the host's container (its first boot starts sshd)."""
    release = releases.get(codename)
    image = images.image_tag(release)
    if not images.image_exists(image):
        images.ensure_image(release)
    argv = [
        "docker",
        "create",
        "--name",
        container(name),
        "--hostname",
        name,
        *CONTAINER_FLAGS,
        # Engine state on volumes: overlay on the container's overlay root fails.
        "--mount",
        f"type=volume,src={container(name)}-docker,dst=/var/lib/docker",
        "--mount",
        f"type=volume,src={container(name)}-containerd,dst=/var/lib/containerd",
        "--label",
        f"{LABEL}=1",
        "--label",
        f"{LABEL}.release={codename}",
    ]
    for hostname in BLACKHOLED:
        argv += ["--add-host", f"{hostname}:127.0.0.1"]
    run([*argv, image], capture=True)
    seed = seed_archive(Path(f"{key}.pub").read_text())
    copy = subprocess.run(
        ["docker", "cp", "-a", "-", f"{container(name)}:/"],
        input=seed,
        capture_output=True,
        check=False,
    )
    if copy.returncode != 0:
        raise TestbedError(f"cannot seed host {name}: {copy.stderr.decode().strip()}")
    run(["docker", "start", container(name)], capture=True)


def start(name: str, codename: str) -> Host:
    releases.get(codename)
    key = ssh_key()
    info = inspect(name)
    reuse = info and info["running"] == "true" and info.get(f"{LABEL}.release") == codename
    if not (reuse and info and info["address"]):
        if info:
            stop(name)
        create(name, codename, key)
    address = address_of(name)
    if not address:
        raise TestbedError(f"host {name} has no address on the network {network.NAME}")
    wait_until(
        lambda: port_open(SSH_PORT, address),
        timeout=60,
        what=f"sshd of host {name} at {address}",
    )
    wait_until(lambda: ssh_ready(address, key), timeout=60, what=f"ssh login to host {name}")
    return Host(name, codename, address, SSH_PORT, images.LOGIN_USER, str(key))


def start_many(pairs: list[tuple[str, str]]) -> list[Host]:
    """Start several hosts at once (each boot mostly waits on systemd)."""
    for _, codename in pairs:
        releases.get(codename)
    ssh_key()
    # One image build per release at a time, before the hosts that need it.
    for codename in dict.fromkeys(c for _, c in pairs):
        release = releases.get(codename)
        if not images.image_exists(images.image_tag(release)):
            images.ensure_image(release)
    with ThreadPoolExecutor(max_workers=max(1, min(len(pairs), 6))) as pool:
        return list(pool.map(lambda pair: start(*pair), pairs))


def stop(name: str) -> None:
    run(["docker", "rm", "-f", "-v", container(name)], capture=True, check=False)
    for volume in ("docker", "containerd"):
        run(
            ["docker", "volume", "rm", "-f", f"{container(name)}-{volume}"],
            capture=True,
            check=False,
        )


def running() -> list[Host]:
    names = output(["docker", "ps", "--filter", f"label={LABEL}=1", "--format", "{{.Names}}"])
    hosts = []
    for cname in filter(None, names.splitlines()):
        name = cname.removeprefix(PREFIX)
        info = inspect(name) or {}
        hosts.append(
            Host(
                name,
                info.get(f"{LABEL}.release", "?"),
                info.get("address", ""),
                SSH_PORT,
                images.LOGIN_USER,
                str(ssh_key()),
            )
        )
    return hosts


def inventory(hosts: list[Host]) -> dict[str, object]:
    """An Ansible inventory (YAML is a superset of this JSON) for the hosts."""
    return {
        "all": {
            "hosts": {
                host.name: {
                    "ansible_host": host.address,
                    "ansible_port": host.port,
                    "ansible_user": host.user,
                    "ansible_ssh_private_key_file": host.identity_file,
                    # Test-bed hosts are created and thrown away: their keys are not pinned.
                    "ansible_ssh_common_args": "-o StrictHostKeyChecking=no "
                    "-o UserKnownHostsFile=/dev/null",
                    "testbed_release": host.release,
                }
                for host in hosts
            }
        }
    }


def as_json(hosts: list[Host]) -> str:
    return json.dumps([asdict(h) for h in hosts], indent=2)
