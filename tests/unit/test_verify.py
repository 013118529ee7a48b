"""`provision verify`'s pure parts: expectations for the shared checks and pytest's report."""

from __future__ import annotations

import json
import subprocess
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from provision.checks.expectations import load
from provision.errors import RunFailedError
from provision.paths import DataPaths
from provision.verify import (
    MISSION_CHECKS,
    CheckOutcome,
    StepResult,
    VerifyResult,
    expectations_from_role_vars,
    parse_junit,
    run_child,
)

REPO = Path(__file__).resolve().parents[2]

ROLE_DEFAULTS = {
    "docker_apt_key_fingerprint": "9DC858229FC7DD38854AE2D88D81803C0EBFCD88",
    "docker_daemon_options": {"log-driver": "json-file"},
    "docker_users": "{{ [ansible_user] }}",
    "docker_registry_mirrors": [],
    "docker_packages": ["docker-ce", "docker-ce-cli"],
}


def test_expectations_from_the_run_variables() -> None:
    expect = expectations_from_role_vars(
        {
            "docker_users": ["ops"],
            "docker_apt_key_fingerprint": "8c50 67A9",
            "docker_daemon_options": {"debug": True},
            "docker_registry_mirrors": ["http://127.0.0.1:5000"],
            "docker_packages": ["docker-ce"],
        },
        role_defaults=ROLE_DEFAULTS,
    )
    assert expect.users == ("ops",)
    assert expect.key_fingerprint == "8C5067A9"
    # the options given are compared; which keys the role owns (registry-mirrors among
    # them) the checks read from the role's record on the host, not from a copy here
    assert expect.daemon_options == {"debug": True}
    assert expect.packages == ("docker-ce",)


def test_expectations_fall_back_to_role_defaults() -> None:
    expect = expectations_from_role_vars({}, role_defaults=ROLE_DEFAULTS)
    assert expect.users is None  # a Jinja default: the checks use the connecting user
    assert expect.key_fingerprint == "9DC858229FC7DD38854AE2D88D81803C0EBFCD88"
    assert expect.daemon_options == {}  # the role's defaults: its record on the host says
    assert expect.packages == ("docker-ce", "docker-ce-cli")


def test_the_shared_checks_read_our_file(tmp_path: Path) -> None:
    """The file `verify` writes is what provision/checks reads back."""
    expect = expectations_from_role_vars(
        {"docker_users": ["ops", "ci"], "docker_daemon_options": {"debug": True}},
        role_defaults=ROLE_DEFAULTS,
    )
    path = tmp_path / "expect.json"
    path.write_text(expect.to_json(), encoding="utf-8")
    assert load(str(path)) == expect
    assert json.loads(path.read_text(encoding="utf-8"))["users"] == ["ops", "ci"]


def test_parse_a_real_junit_report(tmp_path: Path) -> None:
    tests = tmp_path / "test_sample.py"
    tests.write_text(
        "import pytest\n"
        "def test_ok(): pass\n"
        "def test_bad(): assert 1 == 2, 'one is not two'\n"
        "def test_skip(): pytest.skip('not here')\n"
        "@pytest.mark.parametrize('x', ['a'])\n"
        "def test_param(x): pass\n",
        encoding="utf-8",
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    junit = tmp_path / "junit.xml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(tests),
            "-c",
            str(tmp_path / "pytest.ini"),
            "-p",
            "no:cacheprovider",
            f"--junitxml={junit}",
            "-o",
            "junit_family=xunit2",
            "-q",
        ],
        capture_output=True,
        check=False,
        cwd=tmp_path,
    )
    outcomes = {o.name: o for o in parse_junit(junit.read_text(encoding="utf-8"))}
    assert outcomes["test_sample::test_ok"].outcome == "passed"
    assert outcomes["test_sample::test_bad"].outcome == "failed"
    assert "one is not two" in outcomes["test_sample::test_bad"].message
    assert outcomes["test_sample::test_skip"].outcome == "skipped"
    assert outcomes["test_sample::test_param[a]"].outcome == "passed"


MISSION = [
    CheckOutcome("test_docker_host::test_user_in_docker_group[ansible://h-ops]", "passed"),
    CheckOutcome("test_docker_host::test_hello_world_as_user[ansible://h-ops]", "passed"),
]


def test_verify_result_status() -> None:
    passed = VerifyResult(
        checks=[CheckOutcome("c", "passed"), CheckOutcome("s", "skipped"), *MISSION],
        walkthrough=[StepResult("h", "pull", "docker pull busybox", "passed")],
    )
    assert passed.ok
    passed.raise_for_status()
    assert passed.counts() == {"passed": 3, "skipped": 1}
    kept_image = VerifyResult(
        checks=MISSION,
        walkthrough=[StepResult("h", "rmi", "docker rmi busybox", "skipped", "was there before")],
    )
    assert kept_image.ok

    failed_check = VerifyResult(checks=[CheckOutcome("c", "failed", "boom")], checks_exit=1)
    with pytest.raises(RunFailedError, match="1 host check"):
        failed_check.raise_for_status()

    failed_step = VerifyResult(
        checks=MISSION,
        walkthrough=[StepResult("h", "exec", "docker exec x echo", "failed", "no such container")],
    )
    with pytest.raises(RunFailedError, match="walkthrough failed on h at `docker exec x echo`"):
        failed_step.raise_for_status()


def test_skipped_mission_checks_are_no_success() -> None:
    """Connected as root with no docker_users, the checks that prove the mission skip: verify
    says so and fails, although nothing failed."""
    reason = "connected as root and no users expected: no docker user to check"
    result = VerifyResult(
        checks=[
            CheckOutcome("test_docker_host::test_docker_socket", "passed"),
            CheckOutcome(
                "test_docker_host::test_user_in_docker_group[ansible://h-connecting-user]",
                "skipped",
                reason,
            ),
            CheckOutcome(
                "test_docker_host::test_hello_world_as_user[ansible://h-connecting-user]",
                "skipped",
                reason,
            ),
        ]
    )
    assert not result.ok
    assert [c.outcome for c in result.mission_unproven()] == ["skipped", "skipped"]
    with pytest.raises(RunFailedError) as caught:
        result.raise_for_status()
    assert caught.value.exit_code == 1
    assert "test_user_in_docker_group[ansible://h-connecting-user] was skipped" in (
        caught.value.message
    )
    assert "-e docker_users=USER" in caught.value.message
    assert result.as_dict()["counts"] == {"passed": 1, "skipped": 2}


def test_mission_checks_that_did_not_run_at_all() -> None:
    result = VerifyResult(checks=[CheckOutcome("test_docker_host::test_docker_socket", "passed")])
    assert [c.name for c in result.mission_unproven()] == list(MISSION_CHECKS)
    with pytest.raises(RunFailedError, match="was missing"):
        result.raise_for_status()


def test_long_failure_keeps_the_reason_at_its_end() -> None:
    message = (
        "docker run --rm hello-world as ops: " + "Pulling fs layer " * 40 + "err: invalid argument"
    )
    result = VerifyResult(checks=[CheckOutcome("test_hello_world_as_user", "failed", message)])
    with pytest.raises(RunFailedError) as caught:
        result.raise_for_status()
    assert caught.value.message.endswith("err: invalid argument")
    assert "test_hello_world_as_user" in caught.value.message
    assert len(caught.value.message) < 400


def child_request(tmp_path: Path, **request: Any) -> dict[str, Any]:
    """A request for provision.walkthrough on one host (never contacted by these tests)."""
    inventory = tmp_path / "inventory.json"
    inventory.write_text('{"all": {"hosts": {"h": {"ansible_host": "127.0.0.1"}}}}')
    return {"inventory": str(inventory), "hosts": ["h"], **request}


def test_a_crash_of_the_child_is_one_line_with_its_traceback_behind(tmp_path: Path) -> None:
    """The walkthrough's child dies (here: a request without its image): one line, and the
    error carries the child's traceback where --debug prints it (the chained cause)."""
    events: list[Mapping[str, Any]] = []
    with pytest.raises(RunFailedError) as caught:
        run_child(
            paths=DataPaths(REPO),
            request=child_request(tmp_path, job="walk"),
            per_host=120,
            what="the walkthrough",
            on_event=events.append,
        )
    assert caught.value.message == (
        "internal error in the walkthrough: KeyError: 'image' (run with --debug for the traceback)"
    )
    assert events == [{"host": "h"}]  # what came before the crash still arrived
    debug = "".join(traceback.format_exception(caught.value))  # what `--debug` prints
    assert "Traceback (most recent call last)" in str(caught.value.__cause__)
    assert 'provision/walkthrough.py", line' in debug
    assert "Traceback" in caught.value.detail  # -v and --json's error detail


def test_a_host_that_takes_too_long_stops_the_child(tmp_path: Path) -> None:
    with pytest.raises(RunFailedError) as caught:
        run_child(
            paths=DataPaths(REPO),
            request=child_request(tmp_path, job="probe"),
            per_host=0.001,  # the child cannot even start in that time
            what="the reachability probe",
            on_event=lambda event: None,
        )
    assert caught.value.message == "the reachability probe on h did not finish within 0.001 s"
