"""`provision apply` and `provision verify` over real SSH against test-bed hosts.

Needs the test bed (`python -m testbed up`): hosts are systemd containers with sshd at their own
address on the test bed's network, the role's repository/key/mirror variables come from
`python -m testbed vars` (the role's defaults otherwise).
Each test module starts its own hosts and removes them afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provision import verify
from provision.paths import data_paths
from provision.settings import ChecksSettings
from provision.verify import WALKTHROUGH_STEPS, StepResult
from tests.bed import bed_role_vars, provision_argv, ready_status, run_testbed, ssh_argv
from tests.bed import run_provision as provision

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
# The release besides focal: Debian first (another distribution, the role's other branch).
# PROVISION_TEST_OTHER_RELEASE picks one explicitly.
OTHER_RELEASES = ("bookworm", "jammy", "noble", "trixie", "resolute")


def result_of(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The --json document (the one JSON object on stdout)."""
    try:
        document = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"no JSON on stdout (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    assert isinstance(document, dict)
    return document


@dataclass(frozen=True)
class BedHost:
    name: str
    release: str
    address: str
    port: int
    user: str
    identity_file: str
    inventory: Path

    def ssh(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*ssh_argv(self.address, self.identity_file, self.user, self.port), command],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture(scope="module")
def status() -> dict[str, Any]:
    return ready_status()


@pytest.fixture(scope="module")
def workdir(status: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where provision runs: its provision.toml points the network check at the test bed."""
    path = tmp_path_factory.mktemp("provision-cli")
    (path / "provision.toml").write_text(
        f"[checks]\nnetwork_url = {json.dumps(status['network_url'])}\n", encoding="utf-8"
    )
    return path


@pytest.fixture(scope="module")
def role_vars(status: dict[str, Any], workdir: Path) -> Path:
    path = workdir / "testbed-vars.json"
    path.write_text(json.dumps(bed_role_vars()), encoding="utf-8")
    return path


def start_host(release: str, workdir: Path) -> BedHost:
    name = f"c13-{os.getpid() % 100000}{release[:3]}"
    proc = run_testbed("hosts", "start", f"{name}={release}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    (info,) = json.loads(proc.stdout)
    inventory = workdir / f"{name}.json"
    inv = run_testbed("hosts", "inventory", name, timeout=120)
    assert inv.returncode == 0, inv.stderr
    inventory.write_text(inv.stdout, encoding="utf-8")
    return BedHost(
        name=info["name"],
        release=release,
        address=info["address"],
        port=int(info["port"]),
        user=info["user"],
        identity_file=info["identity_file"],
        inventory=inventory,
    )


@pytest.fixture(scope="module")
def focal(status: dict[str, Any], workdir: Path) -> Iterator[BedHost]:
    host = start_host("focal", workdir)
    try:
        yield host
    finally:
        run_testbed("hosts", "stop", host.name, timeout=300)


@pytest.fixture(scope="module")
def other(status: dict[str, Any], workdir: Path) -> Iterator[BedHost]:
    available = set(status.get("releases_in_repository", [])) & set(status.get("images", {}))
    wanted = os.environ.get("PROVISION_TEST_OTHER_RELEASE")
    candidates = (wanted,) if wanted else OTHER_RELEASES
    release = next((r for r in candidates if r in available), None)
    if release is None:
        message = f"the test bed has no release besides focal (has {sorted(available)})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    host = start_host(release, workdir)
    try:
        yield host
    finally:
        run_testbed("hosts", "stop", host.name, timeout=300)


# What a converge would change, read straight from the host (not through provision).
STATE_PROBE = (
    "dpkg-query -W -f '${Package} ${Version} ${db:Status-Abbrev}\\n' | sort; "
    "ls -la --time-style=+%s /etc/apt/sources.list.d /etc/apt/keyrings /etc/docker 2>&1; "
    "getent group docker; cat /etc/docker/daemon.json 2>&1; "
    "systemctl is-active docker 2>&1 || true"
)


def test_check_mode_on_a_fresh_host_changes_nothing(
    focal: BedHost, role_vars: Path, workdir: Path
) -> None:
    before = focal.ssh(STATE_PROBE)
    assert before.returncode == 0, before.stderr
    proc = provision(
        "--json",
        "apply",
        "-i",
        str(focal.inventory),
        "-e",
        f"@{role_vars}",
        "--check",
        "--diff",
        cwd=workdir,
    )
    document = result_of(proc)
    assert proc.returncode == 0, proc.stderr
    assert document["apply"]["check"] is True
    (recap,) = document["apply"]["hosts"]
    assert recap["failed"] == 0
    assert recap["unreachable"] == 0
    after = focal.ssh(STATE_PROBE)
    assert after.stdout == before.stdout
    assert focal.ssh("test -e /etc/apt/sources.list.d/docker.sources").returncode == 1


def test_apply_converges_a_fresh_focal_host(focal: BedHost, role_vars: Path, workdir: Path) -> None:
    proc = provision("apply", "-i", str(focal.inventory), "-e", f"@{role_vars}", cwd=workdir)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    # live task lines, then the recap with the elapsed time
    assert "changed     " + focal.name in proc.stdout
    assert "==> recap" in proc.stdout
    assert f"{focal.name}  ok=" in proc.stdout
    assert "elapsed " in proc.stdout
    # the only line on stderr: the role's warning, with its text (Ubuntu 20.04 is end of life)
    (warning,) = proc.stderr.splitlines()
    assert warning.startswith("warning: Ubuntu 20.04")
    assert "end of life for Docker" in warning
    assert warning.endswith(f"({focal.name})")
    assert focal.ssh("docker --version").returncode == 0


def test_second_apply_changes_nothing(focal: BedHost, role_vars: Path, workdir: Path) -> None:
    proc = provision(
        "--json", "apply", "-i", str(focal.inventory), "-e", f"@{role_vars}", cwd=workdir
    )
    document = result_of(proc)
    assert proc.returncode == 0, proc.stderr
    (recap,) = document["apply"]["hosts"]
    assert recap["host"] == focal.name
    assert recap["changed"] == 0, document["apply"]
    assert recap["failed"] == 0
    assert document["apply"]["changed"] == 0
    assert document["hosts"] == [focal.name]
    # the role's warning is in the document (and the run's own list)
    assert [w for w in document["warnings"] if "end of life for Docker" in w] == (
        document["apply"]["warnings"]
    )
    assert len(document["apply"]["warnings"]) == 1


def test_warnings_come_after_the_recap(focal: BedHost, role_vars: Path, workdir: Path) -> None:
    proc = subprocess.run(
        [*provision_argv(), "apply", "-i", str(focal.inventory), "-e", f"@{role_vars}"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=1200,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    lines = proc.stdout.splitlines()
    recap = lines.index("==> recap")
    (warning,) = [i for i, line in enumerate(lines) if line.startswith("warning: ")]
    assert warning > recap
    # the task line alone does not carry the text; the warning line does
    assert "end of life for Docker" in lines[warning]


def test_verify_passes_with_the_walkthrough(focal: BedHost, role_vars: Path, workdir: Path) -> None:
    proc = provision(
        "--json", "verify", "-i", str(focal.inventory), "-e", f"@{role_vars}", cwd=workdir
    )
    document = result_of(proc)
    assert proc.returncode == 0, json.dumps(document, indent=1)[-3000:]
    checks = document["verify"]["checks"]
    assert checks, "no host checks ran"
    assert all(c["outcome"] == "passed" for c in checks), checks
    assert any("hello_world" in c["name"] for c in checks)
    steps = document["verify"]["walkthrough"]
    assert [s["name"] for s in steps] == list(WALKTHROUGH_STEPS)
    assert all(s["outcome"] == "passed" for s in steps), steps
    assert all(s["host"] == focal.name for s in steps)


def test_an_interrupted_verify_leaves_no_container_and_no_image(
    focal: BedHost, role_vars: Path, workdir: Path
) -> None:
    """Ctrl-C while the walkthrough's container runs: provision exits 130, and the host has
    neither the container nor the image the walkthrough pulled."""
    image = ChecksSettings().walkthrough_image
    assert focal.ssh(f"docker image rm --force {image} >/dev/null 2>&1; true").returncode == 0
    argv = [*provision_argv(), "verify", "-i", str(focal.inventory), "-e", f"@{role_vars}"]
    run = subprocess.Popen(  # its own process group, as a terminal's foreground job is
        argv,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    watchdog = threading.Timer(600, run.kill)  # a hung verify fails the test, not the suite
    watchdog.start()
    try:
        assert run.stdout is not None
        seen = []
        for line in run.stdout:
            seen.append(line)
            if line.split()[:1] == ["PASS"] and " run -d " in line:
                break
        assert seen, "verify printed nothing"
        assert " run -d " in seen[-1], "".join(seen)[-3000:]
        running = focal.ssh("docker ps --quiet --filter name=provision-walkthrough")
        assert running.stdout.strip(), "the walkthrough's container should run now"
        os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        rest, _ = run.communicate(timeout=120)
    finally:
        watchdog.cancel()
    assert run.returncode == 130, "".join(seen) + rest
    left = focal.ssh("docker ps --all --quiet --filter name=provision-walkthrough")
    assert left.returncode == 0
    assert left.stdout.strip() == ""
    assert focal.ssh(f"docker image inspect {image}").returncode != 0


def test_verify_leaves_the_process_environment_alone(focal: BedHost) -> None:
    """The probe and the walkthrough run testinfra in a child with the run's environment:
    provision's own environment is not rewritten, not even for a while (issue 13), and the
    steps still arrive through on_step, in order."""
    writes: list[tuple[str, tuple[Any, ...]]] = []
    watching = [True]

    def audit(event: str, args: tuple[Any, ...]) -> None:
        if watching and event in ("os.putenv", "os.unsetenv"):  # what os.environ[...] = calls
            writes.append((event, args))

    sys.addaudithook(audit)  # a hook cannot be removed: this one records only while watching
    before = dict(os.environ)
    arrived: list[tuple[StepResult, bool]] = []
    try:
        verify.probe_hosts(paths=data_paths(), inventory=focal.inventory, hosts=[focal.name])
        steps = verify.run_walkthrough(
            paths=data_paths(),
            inventory=focal.inventory,
            hosts=[focal.name],
            users={focal.name: focal.user},
            image=ChecksSettings().walkthrough_image,
            on_step=lambda step: arrived.append((step, dict(os.environ) == before)),
        )
    finally:
        watching.clear()
    assert writes == []
    assert dict(os.environ) == before
    assert [step for step, _ in arrived] == steps
    assert [s.name for s in steps] == list(WALKTHROUGH_STEPS)
    assert all(s.outcome == "passed" for s in steps), steps
    assert all(same for _, same in arrived)  # unchanged while each step was reported too


def test_verify_reports_a_broken_host(focal: BedHost, role_vars: Path, workdir: Path) -> None:
    """A check that would not fail proves nothing: stop docker and verify must say so."""
    assert focal.ssh("sudo systemctl stop docker.socket docker").returncode == 0
    try:
        proc = provision("verify", "-i", str(focal.inventory), "-e", f"@{role_vars}", cwd=workdir)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        (line,) = proc.stderr.splitlines()
        assert line.startswith("provision: error: ")
        assert "check(s) failed" in line
    finally:
        focal.ssh("sudo systemctl start docker")


def test_another_release_converges_and_verifies(
    other: BedHost, role_vars: Path, workdir: Path
) -> None:
    first = provision(
        "--json", "apply", "-i", str(other.inventory), "-e", f"@{role_vars}", cwd=workdir
    )
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr
    assert result_of(first)["apply"]["changed"] > 0
    second = provision(
        "--json", "apply", "-i", str(other.inventory), "-e", f"@{role_vars}", cwd=workdir
    )
    assert second.returncode == 0, second.stderr
    assert result_of(second)["apply"]["changed"] == 0
    verify = provision(
        "--json", "verify", "-i", str(other.inventory), "-e", f"@{role_vars}", cwd=workdir
    )
    assert verify.returncode == 0, verify.stdout[-3000:]
    assert len(result_of(verify)["verify"]["walkthrough"]) == len(WALKTHROUGH_STEPS)


def test_verify_fails_when_no_docker_user_was_checked(
    focal: BedHost, role_vars: Path, workdir: Path
) -> None:
    """With no users to check, the group and hello-world checks skip: nothing proved that a
    user can run containers, so verify fails, naming what did not run."""
    proc = provision(
        "--json",
        "verify",
        "-i",
        str(focal.inventory),
        "-e",
        f"@{role_vars}",
        "-e",
        '{"docker_users": []}',
        cwd=workdir,
    )
    document = result_of(proc)
    assert proc.returncode == 1, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert "verify proved nothing about the docker users" in line
    assert "-e docker_users=USER" in line
    checks = document["verify"]["checks"]
    assert [c["outcome"] for c in checks if "docker_group" in c["name"]] == ["skipped"]
    assert document["verify"]["counts"]["skipped"] >= 2
    assert document["verify"]["mission_unproven"]


def test_limit_that_matches_no_host(focal: BedHost, role_vars: Path, workdir: Path) -> None:
    """Refused before Ansible runs, for apply and verify alike."""
    for command in ("apply", "verify"):
        proc = provision(
            command,
            "-i",
            str(focal.inventory),
            "-e",
            f"@{role_vars}",
            "--limit",
            "no-such-host",
            cwd=workdir,
        )
        assert proc.returncode == 2, proc.stdout + proc.stderr
        (line,) = proc.stderr.splitlines()
        assert line == (
            f"provision: error: --limit no-such-host: matches no host of {focal.inventory} (a "
            f"host, a group or a pattern of them; hosts: {focal.name})"
        )
        assert proc.stdout == ""
