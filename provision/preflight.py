"""Checks before ``provision up`` creates or starts a VM: fail in seconds, with a hint.

* vagrant is installed and new enough;
* the provider is there: ``VBoxManage`` for VirtualBox, a working libvirt connection
  (``virsh -c qemu:///system uri``) for libvirt;
* the host has the free RAM the VM asks for, and room for the box and the VM's disk;
* the host ports ``[machine] ports`` forwards are free on 127.0.0.1.
"""

from __future__ import annotations

import errno
import shutil
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from provision import proc
from provision.errors import PrerequisiteError, SettingsError, one_line
from provision.settings import MachineSettings
from provision.vagrant import VIRTUALBOX_HINT, VagrantAdapter

MIN_VAGRANT: Final = (2, 2, 19)
LIBVIRT_URI: Final = "qemu:///system"
MIN_FREE_DISK_GIB: Final = 3
LIBVIRT_HINT: Final = (
    "libvirt is missing: install it (Debian/Ubuntu: apt-get install libvirt-daemon-system "
    "libvirt-clients vagrant-libvirt) or use --provider virtualbox"
)


@dataclass
class PreflightReport:
    free_memory_mib: int | None = None
    free_disk_gib: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


FORWARD_ADDRESS: Final = "127.0.0.1"


def port_in_use(port: int, address: str = FORWARD_ADDRESS) -> bool:
    """True when something listens on ``address:port`` (TCP), so a forward could not bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: a connection in TIME_WAIT does not count, a listener does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def check_ports(machine: MachineSettings, *, in_use: Callable[[int], bool] = port_in_use) -> None:
    """Exit 2 when a host port of ``[machine] ports`` is taken (call it while the VM is not
    running: a running VM holds its own forwards)."""
    for host, guest in machine.forwarded_ports():
        if in_use(host):
            raise SettingsError(
                f"machine.ports: host port {host} (for guest port {guest}) is already in use on "
                f"{FORWARD_ADDRESS}: stop what listens there or forward another port"
            )


def parse_version(text: str) -> tuple[int, ...]:
    numbers: list[int] = []
    for part in text.strip().split("."):
        digits = ""
        for ch in part:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        numbers.append(int(digits))
    return tuple(numbers)


def check_vagrant(adapter: VagrantAdapter) -> str:
    version = adapter.version()
    parsed = parse_version(version)
    if parsed and parsed < MIN_VAGRANT:
        wanted = ".".join(map(str, MIN_VAGRANT))
        raise PrerequisiteError(
            f"vagrant {version} is too old: provision needs {wanted} or newer "
            "(https://developer.hashicorp.com/vagrant/install)"
        )
    return version


def check_provider(provider: str, *, env: Mapping[str, str]) -> str:
    path = env.get("PATH")
    if provider == "virtualbox":
        exe = shutil.which("VBoxManage", path=path)
        if not exe:
            raise PrerequisiteError(VIRTUALBOX_HINT)
        result = proc.run(argv=[exe, "--version"], env=env, timeout=60)
        if result.returncode != 0:
            raise PrerequisiteError(
                "VirtualBox is installed but not working: "
                f"{one_line(result.stderr or result.stdout)[:300]}",
                detail=result.stderr,
            )
        return f"VirtualBox {result.stdout.strip()}"
    if provider == "libvirt":
        exe = shutil.which("virsh", path=path)
        if not exe:
            raise PrerequisiteError(LIBVIRT_HINT)
        result = proc.run(argv=[exe, "-c", LIBVIRT_URI, "uri"], env=env, timeout=30)
        if result.returncode != 0:
            reason = one_line(result.stderr or result.stdout)[:300]
            raise PrerequisiteError(
                f"cannot connect to libvirt at {LIBVIRT_URI}: {reason} "
                "(is libvirtd running, and may this user use it?)",
                detail=result.stderr,
            )
        return f"libvirt {result.stdout.strip()}"
    raise PrerequisiteError(f"unknown provider {provider!r}")  # settings reject it first


def available_memory_mib(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """MemAvailable in MiB (Linux); None where the kernel does not say."""
    try:
        text = meminfo.read_text(encoding="ascii")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key == "MemAvailable":
            fields = rest.split()
            if fields and fields[0].isdigit():
                return int(fields[0]) // 1024
    return None


def _existing_parent(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def vm_storage_dirs(provider: str, env: Mapping[str, str]) -> dict[str, Path]:
    home = Path(env.get("HOME", str(Path.home())))
    dirs = {"boxes": Path(env.get("VAGRANT_HOME", str(home / ".vagrant.d")))}
    if provider == "virtualbox":
        dirs["VM disks"] = home / "VirtualBox VMs"
    else:
        dirs["VM disks"] = Path("/var/lib/libvirt/images")
    return dirs


def check_resources(
    machine: MachineSettings,
    *,
    env: Mapping[str, str],
    free_memory: Callable[[], int | None] = available_memory_mib,
    disk_free_bytes: Callable[[Path], int] = lambda p: shutil.disk_usage(p).free,
) -> PreflightReport:
    report = PreflightReport()
    free = free_memory()
    report.free_memory_mib = free
    if free is not None and free < machine.memory:
        raise PrerequisiteError(
            f"not enough free memory: the VM needs {machine.memory} MiB and {free} MiB are "
            "available; free some or lower [machine] memory / --memory"
        )
    for label, directory in vm_storage_dirs(machine.provider, env).items():
        where = _existing_parent(directory)
        free_gib = disk_free_bytes(where) / 1024**3
        report.free_disk_gib[str(directory)] = round(free_gib, 1)
        if free_gib < MIN_FREE_DISK_GIB:
            raise PrerequisiteError(
                f"not enough free disk for the {label} in {where}: {free_gib:.1f} GiB free, "
                f"at least {MIN_FREE_DISK_GIB} GiB needed"
            )
        if label == "VM disks" and free_gib < machine.disk_gib:
            report.warnings.append(
                f"{where} has {free_gib:.1f} GiB free: the VM's disk may grow to "
                f"{machine.disk_gib} GiB"
            )
    return report


__all__ = [
    "LIBVIRT_HINT",
    "MIN_VAGRANT",
    "PreflightReport",
    "available_memory_mib",
    "check_provider",
    "check_resources",
    "check_vagrant",
]
