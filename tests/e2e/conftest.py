"""End-to-end fixtures: a real Ubuntu 20.04 VM through `provision up --provider libvirt`.

The VM runs under libvirt with software emulation (TCG) unless KVM can run its kernel (see
testbed/vm), from the test bed's offline `provision-testbed/focal` box, with qemu's user-mode
network: the guest's sshd is forwarded to a free 127.0.0.1 port, and the test bed's apt repository
and registry mirror are reached at their own address (the test bed network's gateway, an address
of this machine, which qemu's user-mode network connects to like any other).

Everything runs through the `provision` command in a temporary project directory holding a
`provision.toml`; the VM is created once per module and always destroyed at the end. Wall times
of each phase are printed at the end of the run and written to
$PROVISION_TESTBED_DIR/vm/e2e-timings.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
BOX = "provision-testbed/focal"
MEMORY_MIB = 8192
CPUS = 2
DISK_GB = 10
# Vagrant and the role under software emulation are slow: generous, but bounded.
UP_TIMEOUT = 2700
COMMAND_TIMEOUT = 600

# Vagrant variables that would point the CLI at another project or Vagrantfile.
VAGRANT_PROJECT_VARS = frozenset(
    {"VAGRANT_CWD", "VAGRANT_DOTFILE_PATH", "VAGRANT_VAGRANTFILE", "VAGRANT_DEFAULT_PROVIDER"}
)

TIMINGS: dict[str, float] = {}


def record(phase: str, seconds: float) -> None:
    TIMINGS[phase] = round(seconds, 1)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TIMINGS:
        return
    terminalreporter.section("e2e wall times")
    for phase, seconds in TIMINGS.items():
        terminalreporter.write_line(f"{phase:<44} {seconds:8.1f} s")
    try:
        from testbed.util import state_dir

        target = state_dir() / "vm" / "e2e-timings.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(TIMINGS, indent=2) + "\n")
        terminalreporter.write_line(f"(written to {target})")
    except OSError as exc:  # the summary must not fail the run
        terminalreporter.write_line(f"(timings not written: {exc})")


# --------------------------------------------------------------------------------------------
# Running commands


@dataclass
class Ran:
    argv: list[str]
    rc: int
    stdout: str
    stderr: str
    seconds: float

    def json(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.stdout))
        except ValueError:
            pytest.fail(f"`{shlex.join(self.argv)}` printed no JSON: {self.describe()}")

    def describe(self) -> str:
        return (
            f"exit {self.rc} after {self.seconds:.0f}s\n--- stdout (tail)\n"
            + "\n".join(self.stdout.splitlines()[-60:])
            + "\n--- stderr (tail)\n"
            + "\n".join(self.stderr.splitlines()[-30:])
        )


def run_cmd(
    argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float = COMMAND_TIMEOUT
) -> Ran:
    started = time.monotonic()
    done = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Ran(argv, done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def run_testbed(*args: str, timeout: float = 3600) -> str:
    """`python -m testbed...` as the CI does; its JSON on stdout, its log on stderr."""
    done = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-20:])
        pytest.fail(f"python -m {' '.join(args)} failed (exit {done.returncode}):\n{tail}")
    return done.stdout


# --------------------------------------------------------------------------------------------
# The test bed: libvirt, the box, the fixtures the role is pointed at


@dataclass(frozen=True)
class Testbed:
    driver: str
    role_settings: dict[str, Any]
    network_url: str


@pytest.fixture(scope="session")
def testbed() -> Testbed:
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("the end-to-end tests run as root on Linux (they start libvirtd and a VM)")

    started = time.monotonic()
    run_testbed("testbed.vm", "libvirt", timeout=1800)
    record("libvirt ready (install/start, idempotent)", time.monotonic() - started)

    started = time.monotonic()
    built = json.loads(run_testbed("testbed.vm", "box", timeout=3600))
    phase = "box build (fresh) + vagrant box add" if built["built"] else "box (cached)"
    record(phase, time.monotonic() - started)

    from testbed.vm.box import libvirt_driver

    started = time.monotonic()
    driver = libvirt_driver()
    record(f"libvirt driver chosen: {driver}", time.monotonic() - started)

    status = subprocess.run(
        [sys.executable, "-m", "testbed", "status"], cwd=REPO, capture_output=True, check=False
    )
    if status.returncode != 0:
        started = time.monotonic()
        run_testbed("testbed", "up")
        record("test bed up (repository, registry)", time.monotonic() - started)
    fixtures = json.loads(run_testbed("testbed", "vars"))
    # What an air-gapped site sets, as `python -m testbed vars` prints it (the role's defaults
    # for everything else); provision.toml takes them without the docker_ prefix.
    role_settings = {key.removeprefix("docker_"): value for key, value in fixtures.items()}
    role_settings["apt_repository_url"] = role_settings["apt_repository_url"].replace(
        "{{ ansible_distribution | lower }}", "ubuntu"
    )
    network_url = json.loads(run_testbed("testbed", "status"))["network_url"]
    return Testbed(driver=driver, role_settings=role_settings, network_url=network_url)


# --------------------------------------------------------------------------------------------
# A provision project directory


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def write_settings(path: Path, sections: dict[str, dict[str, Any]]) -> None:
    lines: list[str] = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
        lines.append("")
    path.write_text("\n".join(lines))


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without settings that would override provision.toml."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("PROVISION_") and not k.startswith("PROVISION_TESTBED_"))
        and k not in VAGRANT_PROJECT_VARS
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def docker_contexts(env: dict[str, str]) -> list[str]:
    """The docker CLI's contexts in the configuration ``env`` selects."""
    listing = run_cmd(["docker", "context", "ls", "--format", "{{.Name}}"], cwd=REPO, env=env)
    assert listing.rc == 0, listing.describe()
    return sorted(listing.stdout.split())


@dataclass
class Project:
    """A directory a user runs `provision` in, with its settings and environment."""

    path: Path
    env: dict[str, str]
    runs: list[Ran] = field(default_factory=list)

    def provision(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> Ran:
        ran = run_cmd(
            [sys.executable, "-m", "provision", *args],
            cwd=self.path,
            env=self.env,
            timeout=timeout,
        )
        self.runs.append(ran)
        return ran

    def shell(self, script: str, *, timeout: float = COMMAND_TIMEOUT) -> Ran:
        ran = run_cmd(["sh", "-c", script], cwd=self.path, env=self.env, timeout=timeout)
        self.runs.append(ran)
        return ran

    def docker(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> Ran:
        """This machine's docker CLI, as the laptop user runs it in the project directory."""
        ran = run_cmd(["docker", *args], cwd=self.path, env=self.env, timeout=timeout)
        self.runs.append(ran)
        return ran

    @property
    def domain_prefix(self) -> str:
        """The libvirt domain name prefix the box's Vagrantfile gives this project's VM."""
        dotfile = str((self.path / ".vagrant").resolve())
        return f"provision-testbed-{hashlib.sha256(dotfile.encode()).hexdigest()[:8]}-"

    def domains(self) -> list[str]:
        listing = subprocess.run(
            ["virsh", "-c", "qemu:///system", "list", "--all", "--name"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        return [n.strip() for n in listing.splitlines() if n.strip().startswith(self.domain_prefix)]

    def remove_leftovers(self) -> None:
        """Last resort when `provision destroy` failed: remove the VM through libvirt."""
        for name in self.domains():
            for action in (["destroy", name], ["undefine", name, "--remove-all-storage"]):
                subprocess.run(
                    ["virsh", "-c", "qemu:///system", *action], capture_output=True, check=False
                )


@dataclass
class VM:
    project: Project
    first_up: Ran
    payload: dict[str, Any]
    web_port: int = 0  # the host port forwarded to the guest's port 80
    machine_contexts: list[str] = field(default_factory=list)  # root's own, before the run

    def require_up(self) -> None:
        if self.first_up.rc != 0:
            pytest.skip(
                "the first `provision up` failed (see test_up_creates_converges_and_verifies)"
            )


@pytest.fixture(scope="module")
def vm(testbed: Testbed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VM]:
    from testbed.util import free_port

    path = tmp_path_factory.mktemp("e2e-project")
    web_port = free_port()
    write_settings(
        path / "provision.toml",
        {
            "machine": {
                "box": BOX,
                "provider": "libvirt",
                "memory": MEMORY_MIB,
                "cpus": CPUS,
                "disk_gib": DISK_GB,
                "libvirt_driver": testbed.driver,
                "ports": [f"{web_port}:80"],
            },
            "docker": testbed.role_settings,
            "checks": {"network_url": testbed.network_url},
        },
    )
    # The docker CLI keeps contexts in DOCKER_CONFIG: the project's own, not root's ~/.docker.
    docker_config = tmp_path_factory.mktemp("docker-config")
    project = Project(
        path=path,
        env=clean_env(
            PROVISION_TESTBED_SSH_PORT=str(free_port()), DOCKER_CONFIG=str(docker_config)
        ),
    )
    machine_contexts = docker_contexts(clean_env())
    try:
        first = project.provision("up", "--json", timeout=UP_TIMEOUT)
        record("provision up #1 (total)", first.seconds)
        payload = first.json() if first.stdout.strip() else {}
        converge = (payload.get("converge") or {}).get("elapsed")
        verified = (payload.get("verify") or {}).get("elapsed")
        if converge is not None:
            record("  converge #1", converge)
        if verified is not None:
            record("  verify #1 (checks + walkthrough)", verified)
        if converge is not None and verified is not None:
            record("  vagrant up + preflight + guest probe", first.seconds - converge - verified)
        yield VM(
            project=project,
            first_up=first,
            payload=payload,
            web_port=web_port,
            machine_contexts=machine_contexts,
        )
    finally:
        if project.domains():
            destroyed = project.provision("destroy", "--force")
            record("provision destroy (teardown)", destroyed.seconds)
            if destroyed.rc != 0 or project.domains():
                project.remove_leftovers()
