"""What the tests share to drive the test bed and provision: their CLIs and ssh to the hosts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from testbed.hosts import ssh_argv

REPO = Path(__file__).resolve().parents[1]

__all__ = [
    "REPO",
    "bed_role_vars",
    "provision_argv",
    "ready_status",
    "run_provision",
    "run_testbed",
    "ssh_argv",
]


def run_testbed(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """``python -m testbed ARGS`` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "testbed", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ready_status() -> dict[str, Any]:
    """``python -m testbed status`` of a running test bed. Without one, the test is skipped on a
    workstation and fails under CI, where the suite's runner has started it."""
    proc = run_testbed("status", timeout=120)
    if proc.returncode != 0:
        message = f"the test bed is not ready (python -m testbed up): {proc.stderr[-500:]}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    document = json.loads(proc.stdout)
    assert isinstance(document, dict)
    return document


def bed_role_vars() -> dict[str, Any]:
    """``python -m testbed vars``: the role's variables that point at the test bed's repository
    and registry mirror (call ready_status() first)."""
    proc = run_testbed("vars", timeout=120)
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert isinstance(document, dict)
    return document


def provision_argv() -> list[str]:
    """The installed console script, as a user runs it (``python -m provision`` without one)."""
    script = Path(sys.executable).parent / "provision"
    return [str(script)] if script.exists() else [sys.executable, "-m", "provision"]


def run_provision(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 1200
) -> subprocess.CompletedProcess[str]:
    """``provision ARGS`` through the installed console script, its output captured."""
    return subprocess.run(
        [*provision_argv(), *args],
        cwd=cwd,
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
