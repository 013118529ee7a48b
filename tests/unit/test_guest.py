"""Reading the guest's real RAM and disk, and the warnings on a mismatch."""

from __future__ import annotations

import json
from pathlib import Path

from provision.guest import GIB, GuestResources, compare, parse_probe, root_disk_bytes
from provision.settings import MachineSettings

LSBLK = Path(__file__).parent / "data" / "lsblk"


def test_probe_of_a_vm_with_a_partitioned_disk() -> None:
    guest = parse_probe((LSBLK / "probe-focal-vm.txt").read_text(encoding="utf-8"))
    assert guest.memory_mib == 8150324 // 1024
    assert guest.disk_bytes == 42949672960  # the disk holding "/" (sda), not sda1 or loop0


def test_probe_where_root_is_not_on_a_disk() -> None:
    guest = parse_probe((LSBLK / "probe-focal-container.txt").read_text(encoding="utf-8"))
    assert guest.memory_mib == 24684084 // 1024
    assert guest.disk_bytes is None


def test_real_lsblk_of_debian_12() -> None:
    data = json.loads((LSBLK / "util-linux-2.38-kvm-host.json").read_text(encoding="utf-8"))
    assert root_disk_bytes(data) == 274877906944


def test_sizes_as_strings_and_mountpoints_list() -> None:
    # util-linux before 2.33 prints sizes as strings; 2.37+ can print "mountpoints"
    assert (
        root_disk_bytes(
            {
                "blockdevices": [
                    {
                        "name": "vda",
                        "size": "10737418240",
                        "type": "disk",
                        "children": [
                            {"name": "vda1", "type": "part", "mountpoints": ["/", "/snap"]}
                        ],
                    }
                ]
            }
        )
        == 10737418240
    )


def test_garbage_probe_gives_unknowns() -> None:
    assert parse_probe("not a number\n{broken") == GuestResources(None, None)


def test_matching_guest_gives_no_warning() -> None:
    machine = MachineSettings(memory=8192, disk_gib=10)
    assert compare(machine, GuestResources(memory_mib=7958, disk_bytes=10 * GIB)) == []


def test_box_with_a_larger_disk_explains_vagrant_cannot_shrink() -> None:
    machine = MachineSettings(memory=8192, disk_gib=10)
    (warning,) = compare(machine, GuestResources(memory_mib=7958, disk_bytes=40 * GIB))
    assert "Vagrant cannot shrink a box's disk" in warning
    assert "ubuntu/focal64" in warning
    assert "disk_gib = 40" in warning  # what to do


def test_disk_that_did_not_grow() -> None:
    machine = MachineSettings(disk_gib=20)
    (warning,) = compare(machine, GuestResources(memory_mib=8000, disk_bytes=10 * GIB))
    assert "not grown" in warning
    assert "provision destroy" in warning


def test_memory_mismatch() -> None:
    machine = MachineSettings(memory=8192)
    (warning,) = compare(machine, GuestResources(memory_mib=2000, disk_bytes=None))
    assert "2000 MiB" in warning
    assert "provision halt" in warning
