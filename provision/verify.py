"""Host checks: the shared pytest-testinfra checks and the notes walkthrough.

The shared checks (``provision/checks/``, also molecule's verifier and the end-to-end tests')
run in a pytest subprocess against an Ansible inventory; their expectations (users, key
fingerprint, daemon options) are handed over in a JSON file named by
``PROVISION_CHECKS_EXPECT``. Per-check results come from pytest's JUnit XML report.

The reachability probe and the walkthrough (what the user's notes do: ``docker pull``, ...,
``rmi`` as the target user) run testinfra in a child Python, ``provision/walkthrough.py``, with
the run's environment; its steps arrive here one JSON line each, as they happen.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final
from xml.etree import ElementTree

from provision import proc
from provision.checks.expectations import (
    EXPECT_ENV,
    Expectations,
    normalize_fingerprint,
)
from provision.errors import ProvisionError, RunFailedError, UnreachableError, one_line
from provision.paths import DataPaths, checks_dir
from provision.runner import ansible_env

WALKTHROUGH_STEPS: Final = ("pull", "images", "ps", "run -d", "exec", "logs", "stop", "rm", "rmi")
# Seconds an interrupted walkthrough has to remove what it started on a host.
CLEANUP_GRACE: Final = 30.0
# Bounds per host: ssh alone gives up connecting after 10 s (testinfra's ConnectTimeout), but
# not on a command that hangs; the walkthrough pulls an image and runs a container.
PROBE_HOST_TIMEOUT_S: Final = 120.0
WALK_HOST_TIMEOUT_S: Final = 600.0

log = logging.getLogger("provision.verify")


def expectations_from_role_vars(
    role_vars: Mapping[str, Any],
    *,
    role_defaults: Mapping[str, Any] | None = None,
) -> Expectations:
    """What the shared checks expect, from the docker role's variables (``docker_*``): the
    values the run passed, else the role's defaults (a default that is a Jinja expression is
    left to the checks' own default).

    daemon.json: the checks read the role's own record of the keys it owns on the host; only
    options given explicitly (``docker_daemon_options``) add values to compare."""
    defaults = role_defaults or {}

    def pick(name: str) -> Any:
        if name in role_vars:
            return role_vars[name]
        value = defaults.get(name)
        return None if isinstance(value, str) and "{{" in value else value

    base = Expectations()
    # docker_users' default (null) is resolved by the role alone: the checks read its record
    users = pick("docker_users")
    if not isinstance(users, list):
        users = None
    fingerprint = pick("docker_apt_key_fingerprint")
    daemon = role_vars.get("docker_daemon_options")
    packages = pick("docker_packages")
    return replace(
        base,
        users=None if users is None else tuple(str(u) for u in users),
        key_fingerprint=(
            normalize_fingerprint(str(fingerprint)) if fingerprint else base.key_fingerprint
        ),
        daemon_options=dict(daemon) if isinstance(daemon, dict) else dict(base.daemon_options),
        packages=tuple(str(p) for p in packages) if isinstance(packages, list) else base.packages,
    )


# The checks that prove what provision is for: the users are in the docker group and run
# `docker run hello-world` without sudo. A verify in which they did not pass is no success.
MISSION_CHECKS: Final = ("test_user_in_docker_group", "test_hello_world_as_user")


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    outcome: str  # passed | failed | error | skipped
    message: str = ""
    duration: float = 0.0


@dataclass(frozen=True)
class StepResult:
    host: str
    name: str
    command: str
    outcome: str  # passed | failed | skipped
    detail: str = ""
    duration: float = 0.0


@dataclass
class VerifyResult:
    checks: list[CheckOutcome] = field(default_factory=list)
    walkthrough: list[StepResult] = field(default_factory=list)
    elapsed: float = 0.0
    checks_exit: int = 0

    def mission_unproven(self) -> list[CheckOutcome]:
        """The mission checks that did not pass (skipped, failed, or absent: a stand-in
        outcome), in order."""
        unproven: list[CheckOutcome] = []
        for name in MISSION_CHECKS:
            cases = [c for c in self.checks if _function(c.name) == name]
            if not cases:
                unproven.append(CheckOutcome(name, "missing", "the check did not run"))
            unproven += [c for c in cases if c.outcome != "passed"]
        return unproven

    def counts(self) -> dict[str, int]:
        """How many checks had each outcome (passed, skipped, failed, error)."""
        counts: dict[str, int] = {}
        for check in self.checks:
            counts[check.outcome] = counts.get(check.outcome, 0) + 1
        return counts

    @property
    def ok(self) -> bool:
        return (
            self.checks_exit == 0
            and all(c.outcome in ("passed", "skipped") for c in self.checks)
            and all(s.outcome != "failed" for s in self.walkthrough)
            and not self.mission_unproven()
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "elapsed": round(self.elapsed, 2),
            "counts": self.counts(),
            "mission_unproven": [c.name for c in self.mission_unproven()],
            "checks": [c.__dict__ for c in self.checks],
            "walkthrough": [s.__dict__ for s in self.walkthrough],
        }

    def raise_for_status(self) -> None:
        failed_checks = [c for c in self.checks if c.outcome in ("failed", "error")]
        failed_steps = [s for s in self.walkthrough if s.outcome == "failed"]
        if failed_checks:
            first = failed_checks[0]
            raise RunFailedError(
                f"{len(failed_checks)} host check(s) failed, first: {first.name}: "
                + clip(first.message, 300),
                detail="\n".join(f"{c.name}: {c.message}" for c in failed_checks),
            )
        if failed_steps:
            first_step = failed_steps[0]
            raise RunFailedError(
                f"walkthrough failed on {first_step.host} at `{first_step.command}`: "
                + clip(first_step.detail, 300)
            )
        if self.checks_exit not in (0,):
            raise RunFailedError(
                f"the host checks did not run (pytest exit status {self.checks_exit})"
            )
        unproven = self.mission_unproven()
        if unproven:
            first = unproven[0]
            raise RunFailedError(
                f"verify proved nothing about the docker users: {first.name} was {first.outcome}"
                + (f" ({clip(first.message, 200)})" if first.message else "")
                + "; name the users to check with -e docker_users=USER or [docker] users",
                detail="\n".join(f"{c.name}: {c.outcome}: {c.message}" for c in unproven),
            )


def _function(check_name: str) -> str:
    """``test_docker_host::test_x[ansible://h-ops]`` -> ``test_x``."""
    return check_name.rsplit("::", maxsplit=1)[-1].split("[", maxsplit=1)[0]


def clip(text: str, limit: int) -> str:
    """Shorten ``text`` keeping its start (what failed) and its end (usually why)."""
    if len(text) <= limit:
        return text
    head = limit // 4
    return f"{text[:head]} ... {text[-(limit - head - 5) :]}"


# --------------------------------------------------------------------------------------------
# Shared checks through pytest


def parse_junit(xml_text: str) -> list[CheckOutcome]:
    """Per-test outcomes from a pytest JUnit XML report."""
    root = ElementTree.fromstring(xml_text)  # noqa: S314 - our own pytest wrote it
    outcomes: list[CheckOutcome] = []
    for case in root.iter("testcase"):
        name = case.get("name", "?")
        classname = case.get("classname", "")
        module = classname.rsplit(".", 1)[-1] if classname else ""
        full = f"{module}::{name}" if module else name
        duration = float(case.get("time", "0") or 0)
        outcome, message = "passed", ""
        for tag, kind in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            element = case.find(tag)
            if element is not None:
                outcome = kind
                message = one_line(element.get("message") or element.text or "")[:4000]
                break
        outcomes.append(CheckOutcome(full, outcome, message, duration))
    return outcomes


def run_shared_checks(
    *,
    paths: DataPaths,
    inventory: Path,
    hosts: Sequence[str],
    expectations: Expectations,
    verbose: bool = False,
    on_text: Callable[[str], None] | None = None,
) -> tuple[int, list[CheckOutcome]]:
    tests = checks_dir()
    if not any(tests.glob("test_*.py")):
        raise ProvisionError(f"the shared host checks were not found in {tests}: reinstall")
    workdir = Path(tempfile.mkdtemp(prefix="provision-checks-"))
    try:
        expect_file = workdir / "expect.json"
        expect_file.write_text(expectations.to_json(), encoding="utf-8")
        ini = workdir / "pytest.ini"
        ini.write_text("[pytest]\n", encoding="utf-8")  # not the caller's project config
        junit = workdir / "junit.xml"
        argv = [
            sys.executable,
            "-m",
            "pytest",
            str(tests),
            "-c",
            str(ini),
            "--rootdir",
            str(tests),
            "-p",
            "no:cacheprovider",
            "--hosts=" + ",".join(f"ansible://{h}" for h in hosts),
            f"--ansible-inventory={inventory}",
            f"--junitxml={junit}",
            "-o",
            "junit_family=xunit2",
            "-v" if verbose else "-q",
        ]
        env = dict(os.environ)
        env.update(ansible_env(paths, extra={EXPECT_ENV: str(expect_file)}))
        result = proc.run(argv=argv, env=env, cwd=workdir)
        if on_text is not None:
            on_text(result.stdout + result.stderr)
        outcomes = parse_junit(junit.read_text(encoding="utf-8")) if junit.is_file() else []
        if not outcomes and result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-1:] or [""]
            raise RunFailedError(
                f"the host checks did not run (pytest exit status {result.returncode}): {tail[0]}",
                detail=result.stdout + result.stderr,
            )
        return result.returncode, outcomes
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# The probe and the walkthrough: testinfra in a child Python (provision/walkthrough.py)


class _ChildTraceback(Exception):
    """The child's own traceback, chained to the error so that ``--debug`` prints it."""


def run_child(
    *,
    paths: DataPaths,
    request: Mapping[str, Any],
    per_host: float,
    what: str,
    on_event: Callable[[Mapping[str, Any]], None],
) -> None:
    """Run ``request`` in ``python -m provision.walkthrough`` with the run's environment,
    handing each event to ``on_event`` as it arrives; each host gets ``per_host`` seconds."""
    env = dict(os.environ)
    env.update(ansible_env(paths))
    argv = [sys.executable, "-m", "provision.walkthrough"]
    host = str(request["hosts"][0]) if request["hosts"] else "?"
    # On Ctrl-C or a timeout the child gets SIGTERM and time to remove the container and the
    # image its walkthrough started (provision/walkthrough.py) before it is killed.
    with proc.stream(
        argv=argv, env=env, input_text=json.dumps(request), grace=CLEANUP_GRACE
    ) as child:
        deadline = time.monotonic() + per_host
        while True:
            try:
                line = child.readline(deadline=deadline)
            except TimeoutError:
                raise RunFailedError(
                    f"{what} on {host} did not finish within {per_host:g} s"
                ) from None
            if line is None:
                break
            try:
                event = json.loads(line)
            except ValueError:
                log.debug("%s: %s", what, line)  # not an event: something else's output
                continue
            if "host" in event:
                host = str(event["host"])
                deadline = time.monotonic() + per_host
            on_event(event)
        code, stderr = child.wait()
    if code != 0:
        last = next((x for x in reversed(stderr.splitlines()) if x.strip()), "")
        raise RunFailedError(
            f"internal error in {what}: {clip(one_line(last), 300) or f'exit status {code}'}"
            " (run with --debug for the traceback)",
            detail=stderr,
        ) from _ChildTraceback(stderr.rstrip())


def probe_hosts(*, paths: DataPaths, inventory: Path, hosts: Sequence[str]) -> None:
    """Fail with exit 4 before checking when a host cannot be reached over SSH."""
    unreachable: dict[str, str] = {}

    def on_event(event: Mapping[str, Any]) -> None:
        if "unreachable" in event:
            unreachable[str(event["unreachable"])] = str(event["reason"])

    request = {"job": "probe", "inventory": str(inventory), "hosts": list(hosts)}
    run_child(
        paths=paths,
        request=request,
        per_host=PROBE_HOST_TIMEOUT_S,
        what="the reachability probe",
        on_event=on_event,
    )
    if unreachable:
        first, why = next(iter(unreachable.items()))
        more = f" (and {len(unreachable) - 1} more)" if len(unreachable) > 1 else ""
        raise UnreachableError(
            f"host {first}{more} unreachable: {why}",
            detail="\n".join(f"{h}: {m}" for h, m in unreachable.items()),
        )


def run_walkthrough(
    *,
    paths: DataPaths,
    inventory: Path,
    hosts: Sequence[str],
    users: Mapping[str, str],
    image: str,
    on_step: Callable[[StepResult], None],
) -> list[StepResult]:
    """The notes walkthrough on each host as ``users[host]`` (the login user when empty);
    each step goes to ``on_step`` as soon as the host has done it."""
    results: list[StepResult] = []

    def on_event(event: Mapping[str, Any]) -> None:
        if "step" in event:
            results.append(StepResult(**event["step"]))
            on_step(results[-1])
        elif "unreachable" in event:
            raise UnreachableError(
                f"host {event['unreachable']} unreachable for the walkthrough: {event['reason']}"
            )

    request = {
        "job": "walk",
        "inventory": str(inventory),
        "hosts": list(hosts),
        "users": {h: users.get(h) or "" for h in hosts},
        "image": image,
    }
    run_child(
        paths=paths,
        request=request,
        per_host=WALK_HOST_TIMEOUT_S,
        what="the walkthrough",
        on_event=on_event,
    )
    return results
