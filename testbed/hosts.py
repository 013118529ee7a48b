"""Hosts on demand: systemd containers of real userlands, each in its own network namespace on
the test bed's network (testbed/network.py), with sshd on port 22 of its own address."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from testbed import images, network, releases
from testbed.util import (
    TestbedError,
    log,
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


def boot(name: str, codename: str, key: Path) -> None:
    """Create and start the host's container, or keep a running one of the same release."""
    info = inspect(name)
    reuse = info and info["running"] == "true" and info.get(f"{LABEL}.release") == codename
    if not (reuse and info and info["address"]):
        if info:
            stop(name)
        create(name, codename, key)


def wait_ready(name: str, codename: str, key: Path, timeout: float = 60) -> Host:
    """Wait until the host's sshd lets the test bed's user in."""
    address = address_of(name)
    if not address:
        raise TestbedError(f"host {name} has no address on the network {network.NAME}")
    wait_until(
        lambda: port_open(SSH_PORT, address),
        timeout=timeout,
        what=f"sshd of host {name} at {address}",
    )
    wait_until(lambda: ssh_ready(address, key), timeout=timeout, what=f"ssh login to host {name}")
    return Host(name, codename, address, SSH_PORT, images.LOGIN_USER, str(key))


def start(name: str, codename: str) -> Host:
    releases.get(codename)
    key = ssh_key()
    boot(name, codename, key)
    return wait_ready(name, codename, key)


# Many hosts at once (a fleet of 50 for bench/): first every container is created and started,
# then every sshd is waited for, each phase in a bounded pool. Creating is dockerd's work, which
# more threads only queue up; waiting is mostly sleeping, while the hosts boot side by side.
CREATE_WORKERS = 8
WAIT_WORKERS = 16
# A booting host waits its turn for the CPUs behind the others: its sshd gets the base time plus
# this much per host started with it.
BOOT_SECONDS_PER_HOST = 1.0

# Every host's systemd, journald and udevd hold inotify instances (5 on a booted focal host),
# counted against one per-user kernel limit shared by all containers. At the kernel's default of
# 128 the 26th host's systemd waits silently, starting nothing (measured): make room first.
INOTIFY_PER_HOST = 8
INOTIFY_LIMIT = Path("/proc/sys/fs/inotify/max_user_instances")


def inotify_in_use() -> int:
    count = 0
    for fds in Path("/proc").glob("[0-9]*/fd"):
        try:
            count += sum(os.readlink(fd) == "anon_inode:inotify" for fd in fds.iterdir())
        except OSError:  # a process that ended, or one we may not look at
            continue
    return count


def ensure_inotify(new_hosts: int) -> None:
    """Raise the inotify instance limit when ``new_hosts`` more hosts would exceed it (never
    lower it: others' containers may need what it allows)."""
    limit = int(INOTIFY_LIMIT.read_text())
    needed = inotify_in_use() + INOTIFY_PER_HOST * new_hosts
    if needed <= limit:
        return
    wanted = -(-needed // 256) * 256
    log(f"fs.inotify.max_user_instances {limit} -> {wanted}: room for {new_hosts} more hosts")
    try:
        INOTIFY_LIMIT.write_text(f"{wanted}\n")
    except OSError as exc:
        raise TestbedError(
            f"{new_hosts} more hosts need fs.inotify.max_user_instances >= {needed} (it is "
            f"{limit}) and it cannot be raised here ({exc.strerror}): sysctl -w "
            f"fs.inotify.max_user_instances={wanted}"
        ) from None


def start_many(pairs: list[tuple[str, str]]) -> list[Host]:
    """Start several hosts at once and wait until each one lets us in."""
    for _, codename in pairs:
        releases.get(codename)
    key = ssh_key()
    # One image build per release at a time, before the hosts that need it.
    for codename in dict.fromkeys(c for _, c in pairs):
        release = releases.get(codename)
        if not images.image_exists(images.image_tag(release)):
            images.ensure_image(release)
    ensure_inotify(len(pairs))
    with ThreadPoolExecutor(max_workers=max(1, min(len(pairs), CREATE_WORKERS))) as pool:
        list(pool.map(lambda pair: boot(pair[0], pair[1], key), pairs))
    timeout = 60 + BOOT_SECONDS_PER_HOST * len(pairs)
    with ThreadPoolExecutor(max_workers=max(1, min(len(pairs), WAIT_WORKERS))) as pool:
        return list(pool.map(lambda pair: wait_ready(pair[0], pair[1], key, timeout), pairs))


def stop(name: str) -> None:
    run(["docker", "rm", "-f", "-v", container(name)], capture=True, check=False)
    for volume in ("docker", "containerd"):
        run(
            ["docker", "volume", "rm", "-f", f"{container(name)}-{volume}"],
            capture=True,
            check=False,
        )


def stop_many(names: list[str]) -> None:
    with ThreadPoolExecutor(max_workers=max(1, min(len(names), CREATE_WORKERS))) as pool:
        list(pool.map(stop, names))


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
