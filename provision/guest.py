"""What the VM really got (RAM, primary disk) compared with what was asked for.

Vagrant cannot shrink a box's disk (VirtualBox warns "Cannot shrink 'vagrant_primary' disks size"
and keeps it), some providers ignore settings, and a memory change only applies after a halt: so
``provision up`` reads the guest and warns on a mismatch, saying what to do.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from provision.settings import MachineSettings

# One ssh round trip: MemTotal (kB) on the first line, lsblk's JSON after it.
PROBE_COMMAND: Final = (
    "awk '/^MemTotal:/ {print $2}' /proc/meminfo; "
    "lsblk --json --bytes --output NAME,SIZE,TYPE,MOUNTPOINT"
)
GIB: Final = 1024**3
# The kernel keeps some RAM for itself: MemTotal is a few percent below what the VM has.
MEMORY_LOW: Final = 0.90
MEMORY_HIGH: Final = 1.02
DISK_TOLERANCE: Final = 0.02


@dataclass(frozen=True)
class GuestResources:
    memory_mib: int | None
    disk_bytes: int | None

    @property
    def disk_gib(self) -> float | None:
        return None if self.disk_bytes is None else self.disk_bytes / GIB

    def as_dict(self) -> dict[str, Any]:
        return {
            "memory_mib": self.memory_mib,
            "disk_gib": None if self.disk_gib is None else round(self.disk_gib, 2),
        }


def _to_int(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _mounts(device: Mapping[str, Any]) -> list[str]:
    mounts = device.get("mountpoints")
    if isinstance(mounts, list):
        return [m for m in mounts if isinstance(m, str)]
    single = device.get("mountpoint")
    return [single] if isinstance(single, str) else []


def _holds_root(device: Mapping[str, Any]) -> bool:
    if "/" in _mounts(device):
        return True
    return any(_holds_root(child) for child in device.get("children") or [])


def root_disk_bytes(lsblk: Mapping[str, Any]) -> int | None:
    """Size of the disk that holds ``/`` in ``lsblk --json --bytes`` output."""
    devices: Iterable[Mapping[str, Any]] = lsblk.get("blockdevices") or []
    for device in devices:
        if device.get("type") == "disk" and _holds_root(device):
            return _to_int(device.get("size"))
    return None


def parse_probe(output: str) -> GuestResources:
    first, _, rest = output.strip().partition("\n")
    mem_kib = _to_int(first.strip())
    disk: int | None = None
    try:
        disk = root_disk_bytes(json.loads(rest)) if rest.strip() else None
    except ValueError:
        disk = None
    return GuestResources(memory_mib=None if mem_kib is None else mem_kib // 1024, disk_bytes=disk)


def compare(machine: MachineSettings, guest: GuestResources) -> list[str]:
    """Warnings for every difference between the request and the guest."""
    warnings: list[str] = []
    if guest.memory_mib is not None:
        low, high = machine.memory * MEMORY_LOW, machine.memory * MEMORY_HIGH
        if not low <= guest.memory_mib <= high:
            warnings.append(
                f"memory: the guest has {guest.memory_mib} MiB, {machine.memory} MiB were "
                "requested: a changed memory setting applies after `provision halt` and "
                "`provision up`; if it persists, check the provider's limits"
            )
    real = guest.disk_gib
    if real is not None:
        wanted = float(machine.disk_gib)
        if real > wanted * (1 + DISK_TOLERANCE):
            warnings.append(
                f"disk: the guest's disk is {real:.1f} GiB, {machine.disk_gib} GiB were "
                f"requested: Vagrant cannot shrink a box's disk and box {machine.box!r} ships a "
                f"larger one. Set [machine] disk_gib = {math.ceil(real)} to match it, or use a "
                f"box whose disk is at most {machine.disk_gib} GiB"
            )
        elif real < wanted * (1 - DISK_TOLERANCE):
            warnings.append(
                f"disk: the guest's disk is {real:.1f} GiB, {machine.disk_gib} GiB were "
                "requested: the disk was not grown. Vagrant before 2.4 needs "
                "VAGRANT_EXPERIMENTAL=disks (provision sets it) and resizes only when the VM is "
                "created: run "
                "`provision destroy` and `provision up` again"
            )
    return warnings
