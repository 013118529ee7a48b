"""python -m testbed.vm: libvirt for Vagrant on this machine, and the test bed's Ubuntu box.

libvirt  install vagrant, vagrant-libvirt, libvirt and qemu; start virtlogd and libvirtd;
         /dev/kvm for the kvm group; the `default` storage pool (idempotent)
box      build the provision-testbed/focal box unless cached, add it to Vagrant (idempotent;
         runs `libvirt` first)
status   what is installed, running, cached (JSON; exit 1 unless libvirt and the box are ready)
clean    remove the test bed's VMs, the box (Vagrant, storage pool) and the cached box files
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from testbed.util import TestbedError, log
from testbed.vm import box, libvirt


def cmd_libvirt(_args: argparse.Namespace) -> int:
    started = time.monotonic()
    info = libvirt.ensure()
    log(f"libvirt ready in {time.monotonic() - started:.0f}s")
    print(json.dumps(info, indent=2))
    return 0


def cmd_box(args: argparse.Namespace) -> int:
    libvirt.ensure()
    info: dict[str, Any] = box.ensure()
    if args.probe_kvm:
        info["kvm_runs_ubuntu"] = box.probe_kvm()
    print(json.dumps(info, indent=2))
    return 0


def cmd_status(_args: argparse.Namespace) -> int:
    libvirt_info = libvirt.status()
    box_info = box.status()
    info = {"libvirt": libvirt_info, "box": box_info, "vms": testbed_domains()}
    print(json.dumps(info, indent=2))
    ready = libvirt_info["libvirt_uri"] is not None and bool(box_info["current"])
    return 0 if ready else 1


def testbed_domains() -> list[dict[str, str]]:
    """libvirt domains made from the box (their names carry the box Vagrantfile's prefix)."""
    if not libvirt.daemon_running("libvirtd"):
        return []
    listing = libvirt.virsh("list", "--all", "--name", check=False).stdout
    names = [n.strip() for n in listing.splitlines() if n.strip().startswith("provision-testbed-")]
    return [
        {"name": name, "state": libvirt.virsh("domstate", name, check=False).stdout.strip()}
        for name in names
    ]


def cmd_clean(_args: argparse.Namespace) -> int:
    libvirt.require_root()
    for domain in testbed_domains():
        name = domain["name"]
        log(f"removing the test-bed VM {name}")
        libvirt.virsh("destroy", name, check=False)
        libvirt.virsh("undefine", name, "--remove-all-storage", "--nvram", check=False)
    box.clean()
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m testbed.vm",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser("libvirt", help="install and start libvirt for Vagrant").set_defaults(
        func=cmd_libvirt
    )
    box_cmd = sub.add_parser("box", help="build (or reuse) and add the provision-testbed/focal box")
    box_cmd.add_argument(
        "--probe-kvm",
        action="store_true",
        help="also find out (once per box) whether KVM can run its Ubuntu kernel here",
    )
    box_cmd.set_defaults(func=cmd_box)
    sub.add_parser("status", help="what is ready (JSON)").set_defaults(func=cmd_status)
    sub.add_parser("clean", help="remove the test-bed VMs, the box and its cache").set_defaults(
        func=cmd_clean
    )
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except TestbedError as exc:
        print(f"testbed.vm: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
