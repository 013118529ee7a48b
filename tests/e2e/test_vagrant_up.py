"""`provision up` end to end: a real Ubuntu 20.04 VM through Vagrant, converged and verified.

One VM per module (the `vm` fixture runs the first `provision up --json`); the tests then walk
the laptop user's path in order: up, up again, status, ssh, halt, destroy. The VirtualBox test
needs no VM. Wall times are printed at the end (conftest.py).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    BOX,
    CPUS,
    DISK_GB,
    MEMORY_MIB,
    VM,
    Project,
    clean_env,
    record,
    write_settings,
)

pytestmark = pytest.mark.e2e

WALKTHROUGH = ["pull", "images", "ps", "run -d", "exec", "logs", "stop", "rm", "rmi"]
# The kernel keeps some of the VM's RAM for itself: MemTotal is ~3 % below what the VM has.
MEMORY_LOW = 0.95
GIB = 1024**3


def test_up_creates_converges_and_verifies(vm: VM) -> None:
    first = vm.first_up
    assert first.rc == 0, f"provision up failed: {first.describe()}"
    payload = vm.payload
    assert payload["ok"] is True
    assert payload["machine"]["provider"] == "libvirt"
    assert payload["machine"]["box"] == BOX

    converge = payload["converge"]
    assert converge["status"] == "successful"
    assert converge["changed"] > 0, "a fresh VM must have been changed by the role"
    assert all(h["failed"] == 0 and h["unreachable"] == 0 for h in converge["hosts"])

    verify = payload["verify"]
    assert verify["ok"] is True
    outcomes = {c["name"]: c["outcome"] for c in verify["checks"]}
    assert outcomes, "no host checks ran"
    assert all(o in ("passed", "skipped") for o in outcomes.values()), outcomes
    hello = [name for name in outcomes if "hello_world" in name]
    assert hello, f"no hello-world check among {sorted(outcomes)}"
    assert all(outcomes[name] == "passed" for name in hello)

    steps = verify["walkthrough"]
    assert [s["name"] for s in steps] == WALKTHROUGH
    assert all(s["outcome"] == "passed" for s in steps), steps


def test_guest_has_the_requested_memory_and_disk(vm: VM) -> None:
    vm.require_up()
    guest = vm.payload["guest"]
    assert MEMORY_MIB * MEMORY_LOW <= guest["memory_mib"] <= MEMORY_MIB, guest
    assert guest["disk_gib"] == pytest.approx(DISK_GB, rel=0.02), guest
    # A mismatch would have been reported as a warning by `up`.
    mismatches = [w for w in vm.payload["warnings"] if w.startswith(("memory:", "disk:"))]
    assert not mismatches


def test_second_up_changes_nothing(vm: VM) -> None:
    vm.require_up()
    again = vm.project.provision("up", timeout=1800)
    record("provision up #2 (converge again + verify)", again.seconds)
    assert again.rc == 0, again.describe()
    recap = [line for line in again.stdout.splitlines() if " changed=" in line]
    assert recap, f"no recap in the output: {again.describe()}"
    changed_tasks = [line for line in again.stdout.splitlines() if line.split()[:1] == ["changed"]]
    assert all(re.search(r"\bchanged=0\b", line) for line in recap), (recap, changed_tasks)
    assert all(re.search(r"\bfailed=0\b", line) for line in recap), recap


def test_status_reports_the_running_vm(vm: VM) -> None:
    vm.require_up()
    status = vm.project.provision("status", "--json")
    record("provision status", status.seconds)
    assert status.rc == 0, status.describe()
    machines = status.json()["machines"]
    assert [(m["state"], m["provider"]) for m in machines] == [("running", "libvirt")]
    human = vm.project.provision("status")
    assert human.rc == 0
    assert re.search(r"default\s+running\s+libvirt", human.stdout), human.stdout


def test_ssh_runs_docker_as_the_vagrant_user(vm: VM) -> None:
    vm.require_up()
    ran = vm.project.provision("ssh", "-c", "id -un; docker ps")
    record("provision ssh -c 'docker ps'", ran.seconds)
    assert ran.rc == 0, ran.describe()
    lines = ran.stdout.splitlines()
    assert "vagrant" in lines
    assert any(line.startswith("CONTAINER ID") for line in lines), ran.stdout

    # The numbers `up` read, read again independently.
    probe = vm.project.provision(
        "ssh", "-c", "awk '/^MemTotal:/ {print $2}' /proc/meminfo; lsblk -bdno SIZE /dev/vda"
    )
    assert probe.rc == 0, probe.describe()
    mem_kib, disk_bytes = (int(v) for v in probe.stdout.split()[-2:])
    assert MEMORY_MIB * MEMORY_LOW <= mem_kib / 1024 <= MEMORY_MIB
    assert disk_bytes == DISK_GB * GIB

    failing = vm.project.provision("ssh", "-c", "exit 7")
    assert failing.rc == 1
    assert "status 7" in failing.stderr


def test_halt_stops_the_vm(vm: VM) -> None:
    vm.require_up()
    halted = vm.project.provision("halt", "--json")
    record("provision halt", halted.seconds)
    assert halted.rc == 0, halted.describe()
    document = halted.json()
    assert document["halted"] is True
    assert document["state"] == "shutoff"
    assert vm.project.provision("status", "--json").json()["machines"][0]["state"] == "shutoff"


def test_destroy_removes_the_vm_and_its_disk(vm: VM) -> None:
    vm.require_up()
    assert vm.project.domains(), "the VM's libvirt domain should exist before destroy"
    destroyed = vm.project.provision("destroy", "--force", "--json")
    record("provision destroy", destroyed.seconds)
    assert destroyed.rc == 0, destroyed.describe()
    assert destroyed.json()["destroyed"] is True
    assert vm.project.domains() == []
    volumes = subprocess.run(
        ["virsh", "-c", "qemu:///system", "vol-list", "default"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert vm.project.domain_prefix not in volumes, "the VM's disk was left in the pool"
    status = vm.project.provision("status", "--json")
    assert status.json()["machines"][0]["state"] == "not_created"


def test_up_with_virtualbox_missing_stops_at_once(tmp_path: Path) -> None:
    if shutil.which("VBoxManage"):
        pytest.skip("VirtualBox is installed here")
    write_settings(tmp_path / "provision.toml", {"machine": {"box": BOX, "cpus": CPUS}})
    project = Project(path=tmp_path, env=clean_env())
    started = time.monotonic()
    ran = project.provision("up", "--provider", "virtualbox", timeout=120)
    elapsed = time.monotonic() - started
    record("provision up --provider virtualbox (missing)", elapsed)
    assert ran.rc == 3, ran.describe()
    assert elapsed < 30, f"took {elapsed:.0f}s"
    errors = [line for line in ran.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, ran.stderr
    assert "VirtualBox" in errors[0]
    assert "install" in errors[0].lower()
    assert "Traceback" not in ran.stdout + ran.stderr
    assert not (tmp_path / ".vagrant" / "machines" / "default" / "virtualbox" / "id").exists()
