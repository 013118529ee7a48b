"""libvirt and Vagrant on this machine: packages, daemons, /dev/kvm, the `default` storage pool.

This machine has no systemd as PID 1, so virtlogd and libvirtd are started here (libvirtd under
`nice`, so the qemu processes it forks leave room for other test runs on a 2-core machine).

Hard rule: no network bridge and no libvirt network outside a namespace. The test-bed VMs use
qemu's user-mode network (see the box's Vagrantfile); nothing here defines or starts a libvirt
network, the `default` network's autostart link (shipped by libvirt-daemon-config-network) is
removed before libvirtd starts, and `ensure()` fails if a libvirt network or a bridge shows up.
"""

from __future__ import annotations

import grp
import os
import subprocess
from pathlib import Path
from typing import Any

from testbed.util import (
    TestbedError,
    install_packages,
    log,
    missing_packages,
    pid_alive,
    run,
    wait_until,
)

URI = "qemu:///system"
POOL_NAME = "default"
POOL_DIR = Path("/var/lib/libvirt/images")

# What a libvirt VM through Vagrant needs here, and nothing more: no dnsmasq-base (it serves only
# libvirt networks, which are not used), no ovmf (the box boots with SeaBIOS and grub-pc).
PACKAGES = [
    "vagrant",
    "vagrant-libvirt",
    "libvirt-daemon-system",  # libvirtd, virtlogd and their configuration
    "libvirt-daemon-driver-qemu",
    "libvirt-clients",  # virsh
    "qemu-system-x86",
    "qemu-utils",  # qemu-img
    "iptables",  # libvirt-daemon-system depends on it (iptables | firewalld)
    # building the box
    "debootstrap",
    "fdisk",  # sfdisk
    "e2fsprogs",  # mkfs.ext4 -d
]

# The daemons write these when started with -d as root.
PIDFILES = {"virtlogd": Path("/run/virtlogd.pid"), "libvirtd": Path("/run/libvirtd.pid")}
LIBVIRTD_NICE = 10
NETWORK_AUTOSTART_DIR = Path("/etc/libvirt/qemu/networks/autostart")


def require_root() -> None:
    if os.geteuid() != 0:
        raise TestbedError(
            "python -m testbed.vm must run as root (it installs packages and runs libvirtd)"
        )


def ensure_kvm_device() -> None:
    """Give /dev/kvm to the kvm group: else libvirt re-probes qemu (30-50 s) on every define."""
    kvm = Path("/dev/kvm")
    if not kvm.exists():
        return
    try:
        gid = grp.getgrnam("kvm").gr_gid
    except KeyError:
        run(["groupadd", "--system", "kvm"])
        gid = grp.getgrnam("kvm").gr_gid
    info = kvm.stat()
    if info.st_gid != gid:
        os.chown(kvm, -1, gid)
    if info.st_mode & 0o777 != 0o660:
        kvm.chmod(0o660)


def daemon_running(name: str) -> bool:
    try:
        pid = int(PIDFILES[name].read_text().strip())
    except (OSError, ValueError):
        return False
    if not pid_alive(pid):
        return False
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == name
    except OSError:
        return False


def libvirt_answers() -> bool:
    probe = subprocess.run(
        ["virsh", "-c", URI, "uri"], capture_output=True, text=True, check=False, timeout=30
    )
    return probe.returncode == 0


def disable_network_autostart() -> None:
    """libvirt-daemon-config-network autostarts a NAT network with a bridge: never here."""
    if not NETWORK_AUTOSTART_DIR.is_dir():
        return
    for link in NETWORK_AUTOSTART_DIR.glob("*.xml"):
        log(f"removing libvirt network autostart link {link} (no bridges on this machine)")
        link.unlink()


def ensure_daemons() -> None:
    if not daemon_running("virtlogd"):
        run(["virtlogd", "-d"])
        wait_until(lambda: daemon_running("virtlogd"), timeout=30, what="virtlogd")
    if not daemon_running("libvirtd"):
        disable_network_autostart()
        run(["nice", "-n", str(LIBVIRTD_NICE), "libvirtd", "-d"])
        wait_until(lambda: daemon_running("libvirtd"), timeout=30, what="libvirtd")
    wait_until(libvirt_answers, timeout=60, what=f"libvirtd to answer on {URI}", interval=1)


def virsh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(["virsh", "-c", URI, *args], capture=True, check=check, timeout=120)


def ensure_pool() -> None:
    """A `default` dir pool at /var/lib/libvirt/images (one under /root fails for the qemu user)."""
    info = virsh("pool-info", POOL_NAME, check=False)
    if info.returncode != 0:
        POOL_DIR.mkdir(parents=True, exist_ok=True)
        virsh("pool-define-as", POOL_NAME, "dir", "--target", str(POOL_DIR))
        virsh("pool-autostart", POOL_NAME)
        info = virsh("pool-info", POOL_NAME)
    if "running" not in _field(info.stdout, "State"):
        virsh("pool-start", POOL_NAME)
    virsh("pool-refresh", POOL_NAME)


def _field(text: str, name: str) -> str:
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return ""


def active_networks() -> list[str]:
    listing = virsh("net-list", "--name", check=False)
    return [line.strip() for line in listing.stdout.splitlines() if line.strip()]


def bridges() -> list[str]:
    net = Path("/sys/class/net")
    return sorted(
        p.name for p in net.iterdir() if (p / "bridge").is_dir() and p.name.startswith("virbr")
    )


def check_no_networks() -> None:
    """Fail loudly if a libvirt network or bridge exists: the VMs use user-mode networking."""
    nets = active_networks()
    found = bridges()
    if nets or found:
        raise TestbedError(
            f"libvirt networks {nets} / bridges {found} are active on this machine: this test "
            "bed must not create any (destroy them with `virsh net-destroy NAME`)"
        )


def kvm_usable() -> bool | None:
    """Whether /dev/kvm can be used at all (None = not decided by the device alone).

    Whether it can run an Ubuntu kernel is decided by `testbed.vm.box.probe_kvm`, which boots the
    box's kernel with a short timeout: a nested paravirtual hypervisor (kvm-pvm) opens fine and
    then dies on the first instruction it cannot emulate.
    """
    if not Path("/dev/kvm").exists():
        return False
    return None


def ensure() -> dict[str, Any]:
    require_root()
    install_packages(PACKAGES)
    ensure_kvm_device()
    ensure_daemons()
    ensure_pool()
    check_no_networks()
    return status()


def status() -> dict[str, Any]:
    daemons = {name: daemon_running(name) for name in PIDFILES}
    answers = daemons["libvirtd"] and libvirt_answers()
    pool = ""
    if answers:
        pool = _field(virsh("pool-info", POOL_NAME, check=False).stdout, "State")
    return {
        "packages_missing": missing_packages(PACKAGES),
        "daemons": daemons,
        "libvirt_uri": URI if answers else None,
        "pool": {"name": POOL_NAME, "path": str(POOL_DIR), "state": pool or None},
        "networks_active": active_networks() if answers else [],
        "bridges": bridges(),
        "kvm_device": Path("/dev/kvm").exists(),
        "vagrant": _vagrant_version(),
    }


def _vagrant_version() -> str | None:
    try:
        probe = subprocess.run(
            ["vagrant", "--version"], capture_output=True, text=True, check=False, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return probe.stdout.strip() or None
