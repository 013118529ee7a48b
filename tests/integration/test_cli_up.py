"""`provision up/status/ssh/halt/destroy` end to end, with a stand-in for the `vagrant` binary.

Everything past Vagrant is real: the stand-in answers `vagrant status/up/ssh-config/ssh/halt/
destroy` the way Vagrant 2.3 does (`--machine-readable` records, an `ssh-config` block), and its
"VM" is a fresh test-bed host reached over real SSH. So the wrapper's own path — preflight, the
environment it hands Vagrant, inventory from ssh-config, the guest probe and its warnings,
converge, checks, walkthrough, a second `up` with changed=0 — runs for real in CI, where no VM can
boot quickly. The real Vagrant + libvirt VM is the end-to-end suite's job (tests/e2e).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.bed import bed_role_vars, ready_status, run_provision, run_testbed

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

FAKE_VAGRANT = r'''#!{python}
"""Stand-in for `vagrant` (see tests/integration/test_cli_up.py)."""
import json, os, subprocess, sys, time

host = json.loads(os.environ["FAKE_VAGRANT_HOST"])
dot = os.environ.get("VAGRANT_DOTFILE_PATH") or os.path.join(os.getcwd(), ".vagrant")
os.makedirs(dot, exist_ok=True)
state_file = os.path.join(dot, "fake-state")
args = sys.argv[1:]
with open(os.path.join(dot, "fake-calls.jsonl"), "a") as log:
    env = {{k: v for k, v in os.environ.items() if k.startswith(("VAGRANT_", "PROVISION_"))}}
    log.write(json.dumps({{"args": args, "env": env}}) + "\n")


def state():
    return open(state_file).read() if os.path.exists(state_file) else "not_created"


def record(target, kind, *data):
    text = [d.replace(",", "%!(VAGRANT_COMMA)").replace("\n", "\\n") for d in data]
    print(",".join([str(int(time.time())), target, kind, *text]), flush=True)


if args == ["--version"]:
    print("Vagrant 2.3.4")
    sys.exit(0)
command = args[0]
if command == "status":
    record("default", "metadata", "provider", "libvirt")
    record("default", "provider-name", "libvirt")
    record("default", "state", state())
    record("", "ui", "info", "Current machine states:\n\ndefault  " + state() + " (libvirt)")
elif command == "up":  # what Vagrant prints without --machine-readable
    print("Bringing machine 'default' up with 'libvirt' provider...", flush=True)
    print("==> default: Creating domain with the following settings...", flush=True)
    open(state_file, "w").write("running")
    print("==> default: Machine booted and ready!", flush=True)
elif command == "halt":
    print("==> default: Halting domain...", flush=True)
    open(state_file, "w").write("shutoff")
elif command == "destroy":
    print("==> default: Removing domain...", flush=True)
    if os.path.exists(state_file):
        os.remove(state_file)
elif command == "ssh-config":
    if state() != "running":
        print("The provider for this Vagrant-managed machine is reporting that it is not yet "
              "ready for SSH.", file=sys.stderr)
        sys.exit(1)
    print("Host default\n  HostName {{address}}\n  User {{user}}\n  Port {{port}}\n"
          "  UserKnownHostsFile /dev/null\n  StrictHostKeyChecking no\n"
          "  PasswordAuthentication no\n  IdentityFile {{identity_file}}\n"
          "  IdentitiesOnly yes\n  LogLevel FATAL\n".format(**host))
elif command == "ssh":
    remote = None
    for flag in ("--command", "-c"):
        if flag in args:
            remote = args[args.index(flag) + 1]
    argv = ["ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-i", host["identity_file"], "-p", str(host["port"]),
            host["user"] + "@" + host["address"]]
    sys.exit(subprocess.call(argv + ([remote] if remote else [])))
else:
    print("fake vagrant: unsupported " + " ".join(args), file=sys.stderr)
    sys.exit(1)
'''


@pytest.fixture(scope="module")
def bed_proxy() -> str:
    """The test bed's forwarding proxy: the fake VM reaches the repository and the registry
    only through it, as a laptop on a company network does (HTTP(S)_PROXY)."""
    ready_status()
    started = run_testbed("proxy", "up", timeout=300)
    assert started.returncode == 0, started.stderr[-2000:]
    return str(ready_status()["proxy"])


@pytest.fixture(scope="module")
def vm_host(bed_proxy: str) -> Iterator[dict[str, Any]]:
    name = f"c13-up{os.getpid() % 100000}"
    proc = run_testbed("hosts", "start", f"{name}=focal", "--egress", "proxy")
    assert proc.returncode == 0, proc.stderr[-2000:]
    (host,) = json.loads(proc.stdout)
    try:
        yield {**host, "proxy": bed_proxy}
    finally:
        run_testbed("hosts", "stop", name, timeout=300)


@pytest.fixture(scope="module")
def project(vm_host: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project directory whose provision.toml points the role at the test bed's fixtures."""
    directory = tmp_path_factory.mktemp("project")
    network_url = ready_status()["network_url"]
    bed_vars = bed_role_vars()
    mirrors = json.dumps(bed_vars["docker_registry_mirrors"])
    insecure = json.dumps(bed_vars["docker_insecure_registries"])
    (directory / "provision.toml").write_text(
        "[machine]\n"
        'provider = "libvirt"\n'
        "memory = 1024\n"
        "cpus = 1\n"
        "[docker]\n"
        f"apt_repository_url = {json.dumps(bed_vars['docker_apt_repository_url'])}\n"
        f"apt_key_fingerprint = {json.dumps(bed_vars['docker_apt_key_fingerprint'])}\n"
        f"registry_mirrors = {mirrors}\n"
        f"insecure_registries = {insecure}\n"
        "[checks]\n"
        f"network_url = {json.dumps(network_url)}\n",
        encoding="utf-8",
    )
    fakebin = directory / "fakebin"
    fakebin.mkdir()
    vagrant = fakebin / "vagrant"
    vagrant.write_text(FAKE_VAGRANT.format(python=sys.executable), encoding="utf-8")
    vagrant.chmod(0o755)
    virsh = fakebin / "virsh"
    virsh.write_text("#!/bin/sh\necho qemu:///system\n", encoding="utf-8")
    virsh.chmod(0o755)
    return directory


def provision(
    project: Path, vm_host: dict[str, Any], *args: str, timeout: float = 1200
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    # the machine's own proxy, which `up` passes on to the VM's role
    env.update(http_proxy=vm_host["proxy"], HTTPS_PROXY=vm_host["proxy"], NO_PROXY="localhost")
    env["PATH"] = os.pathsep.join(
        [str(project / "fakebin"), str(Path(sys.executable).parent), env.get("PATH", "")]
    )
    env["FAKE_VAGRANT_HOST"] = json.dumps(vm_host)
    return run_provision(*args, cwd=project, env=env, timeout=timeout)


def vagrant_calls(project: Path) -> list[dict[str, Any]]:
    lines = (project / ".vagrant" / "fake-calls.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_up_creates_converges_and_verifies(project: Path, vm_host: dict[str, Any]) -> None:
    proc = provision(project, vm_host, "up")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    out = proc.stdout
    for phase in (
        "==> preflight",
        "==> vagrant up",
        "==> converge",
        "==> recap",
        "==> host checks",
        "==> walkthrough",
    ):
        assert phase in out
    assert "Machine booted and ready!" in out  # Vagrant's progress is streamed
    # The guest (a container on a 24 GB host) does not have the 1024 MiB asked for: warned.
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]
    assert any(w.startswith("warning: memory: the guest has") for w in warnings), proc.stderr
    assert "9/9 walkthrough steps passed" in out
    # direct egress is blocked: the key, packages and pulls went through the machine's proxy
    passed = f"passing this machine's proxy to the VM's role: docker_proxy http={vm_host['proxy']}"
    assert passed in out + proc.stderr

    (up_call,) = [c for c in vagrant_calls(project) if c["args"][0] == "up"]
    assert up_call["args"] == ["up", "--no-provision", "--provider=libvirt"]
    env = up_call["env"]
    assert env["VAGRANT_LOG"] == "error"  # a failure's class is in Vagrant's error log
    assert env["VAGRANT_EXPERIMENTAL"].split(",").count("disks") == 1
    assert env["VAGRANT_DOTFILE_PATH"] == str(project / ".vagrant")
    assert Path(env["VAGRANT_CWD"], "Vagrantfile").is_file()
    assert env["VAGRANT_DEFAULT_PROVIDER"] == "libvirt"
    assert env["PROVISION_BOX"] == "generic/ubuntu2004"  # libvirt's default box
    assert (env["PROVISION_MEMORY"], env["PROVISION_CPUS"], env["PROVISION_DISK_GIB"]) == (
        "1024",
        "1",
        "10",
    )
    inventory = (project / ".vagrant" / "provision" / "inventory.yml").read_text(encoding="utf-8")
    assert f"ansible_port: {vm_host['port']}" in inventory


def test_second_up_converges_with_no_change(project: Path, vm_host: dict[str, Any]) -> None:
    proc = provision(project, vm_host, "--json", "up", "--no-checks")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert document["converge"]["changed"] == 0
    assert document["converge"]["hosts"][0]["failed"] == 0
    assert document["guest"]["memory_mib"] > 1024
    assert any(w.startswith("memory:") for w in document["warnings"])
    assert "verify" not in document


def test_status_ssh_verify(project: Path, vm_host: dict[str, Any]) -> None:
    status = provision(project, vm_host, "--json", "status")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["machines"] == [
        {"name": "default", "state": "running", "provider": "libvirt"}
    ]
    ssh = provision(project, vm_host, "ssh", "-c", "docker ps --format '{{.ID}}' && echo ok")
    assert ssh.returncode == 0, ssh.stderr
    assert ssh.stdout.strip().endswith("ok")
    captured = provision(project, vm_host, "--json", "ssh", "-c", "echo out; echo err >&2")
    assert captured.returncode == 0, captured.stderr
    assert json.loads(captured.stdout)["ssh"] == {
        "command": "echo out; echo err >&2",
        "exit_status": 0,
        "stdout": "out\n",
        "stderr": "err\n",
    }
    failing = provision(project, vm_host, "ssh", "-c", "exit 3")
    assert failing.returncode == 1
    assert failing.stderr.strip() == "provision: error: `exit 3` exited with status 3"
    verify = provision(project, vm_host, "verify")
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr


def test_halt_then_destroy(project: Path, vm_host: dict[str, Any]) -> None:
    halt = provision(project, vm_host, "halt")
    assert halt.returncode == 0, halt.stderr
    assert "the VM is halted (state: shutoff)" in halt.stdout
    # a halted VM cannot be verified or reached
    verify = provision(project, vm_host, "verify")
    assert verify.returncode == 1
    assert "the VM is not running (state: shutoff)" in verify.stderr
    refused = provision(project, vm_host, "destroy")  # no terminal, no --force
    assert refused.returncode == 2
    destroy = provision(project, vm_host, "destroy", "--force")
    assert destroy.returncode == 0, destroy.stderr
    assert "the VM is destroyed" in destroy.stdout
    again = provision(project, vm_host, "--json", "destroy", "--force")
    assert json.loads(again.stdout)["destroyed"] is False
    assert not (project / ".vagrant" / "provision" / "inventory.yml").exists()
