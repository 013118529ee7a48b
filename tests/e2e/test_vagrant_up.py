"""`provision up` end to end: a real Ubuntu 20.04 VM through Vagrant, converged and verified.

One VM per module (the `vm` fixture runs the first `provision up --json`); the tests then walk
the laptop user's path in order: up, up again, status, ssh, this machine's own docker CLI through
the context and `provision env`, a container's published port at 127.0.0.1, halt, up after the
halt (the context and the port work again), destroy (the context is gone). The VirtualBox test
needs no VM. Wall times are printed at the end (conftest.py).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
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
    docker_contexts,
    record,
    write_settings,
)

pytestmark = pytest.mark.e2e

CONTEXT = "provision"
HELLO = "Hello from Docker!"
# A web server from the test bed's mirror (busybox's httpd), published on the guest's port 80.
WEB_PAGE = "served by the VM"
WEB_SERVER = [
    "busybox",
    "sh",
    "-c",
    f"mkdir -p /www && echo '{WEB_PAGE}' > /www/index.html && exec httpd -f -p 80 -h /www",
]
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
    # The one line on how to use the context, on every up.
    how = f"docker context {CONTEXT} (unchanged): docker --context {CONTEXT} ps, or docker "
    assert how + f"context use {CONTEXT}" in again.stdout, again.stdout


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


def fetch(port: int, *, within: float = 60) -> str:
    """The page at 127.0.0.1:port, retried while the server starts."""
    deadline = time.monotonic() + within
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
                return str(response.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def hello_through_the_context(vm: VM, *context: str) -> None:
    ran = vm.project.docker(*context, "run", "--rm", "hello-world")
    assert ran.rc == 0, ran.describe()
    assert HELLO in ran.stdout


def test_the_machines_docker_cli_runs_hello_world_in_the_vm(vm: VM) -> None:
    vm.require_up()
    docker = vm.payload["docker"]
    assert docker["context"] == CONTEXT
    assert docker["context_action"] == "created"
    assert docker["current"] is False, "up must not switch the context unless asked"
    assert docker["host"].startswith("unix://")
    assert docker["host"].endswith("/docker.sock")
    socket_path = Path(docker["host"].removeprefix("unix://"))
    assert socket_path.is_socket()
    assert socket_path.stat().st_mode & 0o077 == 0, "the engine's socket is the user's alone"

    started = time.monotonic()
    hello_through_the_context(vm, "--context", CONTEXT)
    record("docker --context provision run --rm hello-world", time.monotonic() - started)
    # The VM's engine answered, not this machine's: its name is the VM's host name.
    name = vm.project.docker("--context", CONTEXT, "info", "--format", "{{.Name}}")
    assert name.rc == 0, name.describe()
    assert name.stdout.strip() == "provision"

    status = vm.project.provision("status", "--json").json()["docker"]
    assert status["forwarding"] is True
    assert status["context"] == CONTEXT
    assert status["context_exists"] is True


def test_env_points_a_shell_at_the_vm_engine(vm: VM) -> None:
    vm.require_up()
    env = vm.project.provision("env")
    assert env.rc == 0, env.describe()
    assert vm.project.provision("env", "--json").json()["env"]["DOCKER_CONTEXT"] == CONTEXT
    # A shell evaluates the lines; the docker CLI then reaches the VM without --context.
    script = f'eval "$({sys.executable} -m provision env)"; docker info --format "{{{{.Name}}}}"'
    ran = vm.project.shell(script)
    assert ran.rc == 0, ran.describe()
    assert ran.stdout.strip() == "provision"


def test_a_published_port_answers_on_the_machines_loopback(vm: VM) -> None:
    vm.require_up()
    assert vm.payload["docker"]["ports"] == [
        {"host_ip": "127.0.0.1", "host": vm.web_port, "guest": 80, "protocol": "tcp"}
    ]
    started = vm.project.docker(
        "--context", CONTEXT, "run", "-d", "--name", "web", "-p", "80:80", *WEB_SERVER
    )
    assert started.rc == 0, started.describe()
    try:
        assert fetch(vm.web_port).strip() == WEB_PAGE
    finally:
        vm.project.docker("--context", CONTEXT, "rm", "-f", "web")


def in_a_container(vm: VM, script: str, *context: str) -> str:
    """``script`` in busybox with the project directory bind-mounted from this machine's path."""
    ran = vm.project.shell(
        shlex.join(["docker", *context, "run", "--rm", "-v", f"{vm.project.path}:/w", "busybox"])
        + f" sh -c {shlex.quote(script)}"
    )
    assert ran.rc == 0, ran.describe()
    return ran.stdout


def test_the_project_folder_is_at_the_same_path_in_the_vm(vm: VM) -> None:
    vm.require_up()
    assert vm.payload["machine"]["share"] == str(vm.project.path.resolve())
    assert vm.payload["docker"]["share"] == str(vm.project.path.resolve())
    (vm.project.path / "from-machine.txt").write_text("written on the machine\n")
    # "$PWD" as a laptop user writes it: this machine's path, resolved in the VM.
    read = vm.project.shell(
        f'docker --context {CONTEXT} run --rm -v "$PWD":/w busybox cat /w/from-machine.txt'
    )
    assert read.rc == 0, read.describe()
    assert read.stdout == "written on the machine\n"
    in_a_container(vm, "echo written in a container > /w/from-container.txt", "--context", CONTEXT)
    made = vm.project.path / "from-container.txt"
    assert made.read_text() == "written in a container\n"
    owner = made.stat()
    assert (owner.st_uid, owner.st_gid) == (os.getuid(), os.getgid())


def test_halt_stops_the_vm(vm: VM) -> None:
    vm.require_up()
    halted = vm.project.provision("halt", "--json")
    record("provision halt", halted.seconds)
    assert halted.rc == 0, halted.describe()
    document = halted.json()
    assert document["halted"] is True
    assert document["state"] == "shutoff"
    status = vm.project.provision("status", "--json").json()
    assert status["machines"][0]["state"] == "shutoff"
    assert status["docker"]["forwarding"] is False
    assert status["docker"]["context_exists"] is True, "halt keeps the context"


def test_up_after_halt_reconnects_and_can_switch_the_context(vm: VM) -> None:
    vm.require_up()
    again = vm.project.provision("up", "--no-checks", "--use-context", "--json", timeout=1800)
    record("provision up #3 (after halt, --no-checks)", again.seconds)
    assert again.rc == 0, again.describe()
    docker = again.json()["docker"]
    assert docker["context_action"] == "unchanged"
    assert docker["current"] is True
    current = vm.project.docker("context", "show")
    assert current.stdout.strip() == CONTEXT
    hello_through_the_context(vm)  # no --context: the current one
    assert in_a_container(vm, "cat /w/from-machine.txt") == "written on the machine\n"
    started = vm.project.docker("run", "-d", "--name", "web", "-p", "80:80", *WEB_SERVER)
    assert started.rc == 0, started.describe()
    try:
        assert fetch(vm.web_port).strip() == WEB_PAGE
    finally:
        vm.project.docker("rm", "-f", "web")


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

    assert destroyed.json()["docker"]["context_removed"] is True
    assert CONTEXT not in docker_contexts(vm.project.env), "destroy must remove the context"
    assert docker_contexts(clean_env()) == vm.machine_contexts, "root's own contexts changed"
    assert not list((vm.project.path / ".vagrant" / "provision").glob("docker.sock"))


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
