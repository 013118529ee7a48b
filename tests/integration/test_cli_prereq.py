"""Exit codes of `provision` against the real tools, without the test bed.

* no `vagrant` on PATH → exit 3 with the install hint;
* Vagrant present, VirtualBox absent → exit 3 "VirtualBox is missing" within seconds, from
  preflight and from Vagrant's own `ProviderNotUsable`;
* an unreachable SSH host → exit 4 and one line; with ``-v`` into a file, Ansible's text comes
  without colour codes and carriage returns;
* Ctrl-C during an Ansible run → exit 130, one line, and a recap that says it was interrupted.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from provision.errors import EXIT_PREREQ, PrerequisiteError
from provision.paths import data_paths
from provision.settings import MachineSettings
from provision.vagrant import VIRTUALBOX_HINT, VagrantAdapter
from tests.bed import provision_argv
from tests.bed import run_provision as run

pytestmark = pytest.mark.integration

VENV_BIN = Path(sys.executable).parent


def path_without(*tools: str) -> str:
    """PATH with the venv but without the directories that hold ``tools``."""
    dirs = [str(VENV_BIN)]
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if entry and not any((Path(entry) / t).exists() for t in tools):
            dirs.append(entry)
    return os.pathsep.join(dirs)


@pytest.mark.parametrize("command", [["up", "--memory", "1024"], ["status"], ["halt"]])
def test_missing_vagrant_is_exit_3_with_install_hint(command: list[str], tmp_path: Path) -> None:
    env = dict(os.environ, PATH=path_without("vagrant"))
    assert shutil.which("vagrant", path=env["PATH"]) is None
    started = time.monotonic()
    proc = run(*command, cwd=tmp_path, env=env)
    assert proc.returncode == EXIT_PREREQ, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line == (
        "provision: error: vagrant is not installed: install it from "
        "https://developer.hashicorp.com/vagrant/install (Debian/Ubuntu: apt-get install vagrant)"
    )
    assert time.monotonic() - started < 10
    assert not (tmp_path / ".vagrant").exists()


needs_vagrant = pytest.mark.skipif(shutil.which("vagrant") is None, reason="vagrant not installed")
needs_no_virtualbox = pytest.mark.skipif(
    shutil.which("VBoxManage") is not None, reason="VirtualBox is installed here"
)


@needs_vagrant
@needs_no_virtualbox
def test_up_without_virtualbox_is_exit_3_within_seconds(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = run("up", "--provider", "virtualbox", "--memory", "1024", cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert proc.returncode == EXIT_PREREQ, proc.stdout + proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line == f"provision: error: {VIRTUALBOX_HINT}"
    assert elapsed < 30


@needs_vagrant
@needs_no_virtualbox
def test_vagrants_provider_not_usable_maps_to_exit_3(tmp_path: Path) -> None:
    """Past preflight (say VBoxManage exists but cannot work), Vagrant's own
    Vagrant::Errors::ProviderNotUsable is the hook."""
    progress: list[str] = []
    adapter = VagrantAdapter(
        project_dir=tmp_path,
        paths=data_paths(),
        machine=MachineSettings(provider="virtualbox", memory=1024),
        progress=progress.append,
    )
    started = time.monotonic()
    with pytest.raises(PrerequisiteError) as caught:
        adapter.up()
    assert time.monotonic() - started < 30
    assert caught.value.message == VIRTUALBOX_HINT
    assert "Vagrant::Errors::ProviderNotUsable" in caught.value.detail
    assert "Vagrant could not detect VirtualBox" in caught.value.detail


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_inventory(path: Path, port: int) -> Path:
    inventory = {
        "all": {
            "hosts": {
                "ghost": {
                    "ansible_host": "127.0.0.1",
                    "ansible_port": port,
                    "ansible_user": "ops",
                    "ansible_ssh_common_args": (
                        "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
                    ),
                }
            }
        }
    }
    path.write_text(json.dumps(inventory), encoding="utf-8")
    return path


@pytest.mark.parametrize("command", ["apply", "verify"])
def test_unreachable_host_is_exit_4_and_one_line(command: str, tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "inventory.json", free_port())
    started = time.monotonic()
    proc = run(command, "-i", str(inventory), cwd=tmp_path, timeout=120)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("provision: error: host ghost unreachable: ")
    assert "Connection refused" in line
    assert time.monotonic() - started < 60


def test_unreachable_host_in_json(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "inventory.json", free_port())
    proc = run("--json", "apply", "-i", str(inventory), cwd=tmp_path, timeout=120)
    document = json.loads(proc.stdout)
    assert proc.returncode == 4
    assert document["exit_code"] == 4
    # Tasks that run on the controller (the facts pre-task's condition, the role's argument
    # check) may count as ok or skipped; the host itself was never reached.
    (recap,) = document["apply"]["hosts"]
    assert recap["host"] == "ghost"
    assert (recap["unreachable"], recap["changed"], recap["failed"]) == (1, 0, 0)
    assert "ghost" in document["apply"]["unreachable"]


@pytest.fixture
def silent_ssh_port() -> Iterator[int]:
    """A TCP port that accepts connections and never speaks SSH: an Ansible run hangs there."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield int(server.getsockname()[1])


def test_ctrl_c_stops_an_ansible_run_with_130(silent_ssh_port: int, tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "inventory.json", silent_ssh_port)
    with subprocess.Popen(
        [*provision_argv(), "apply", "-i", str(inventory)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("==> apply")
        time.sleep(3)  # ansible-playbook is now waiting for the SSH banner
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert time.monotonic() - started < 30
    (line,) = err.splitlines()
    assert line.startswith("provision: error: interrupted")
    recap = out[out.index("==> recap") :]
    assert "interrupted" in recap
    assert "no host" not in recap  # the run was stopped; hosts were there


def test_verbose_output_into_a_file_is_plain_text(tmp_path: Path) -> None:
    """Ansible writes into ansible-runner's pseudo-terminal: no colour codes or carriage
    returns may reach a file."""
    inventory = write_inventory(tmp_path / "inventory.json", free_port())
    proc = run("-v", "apply", "-i", str(inventory), cwd=tmp_path, timeout=120)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "UNREACHABLE" in proc.stdout  # Ansible's own text came through
    assert "\x1b" not in proc.stdout + proc.stderr
    assert "\r" not in proc.stdout + proc.stderr
