"""What the tests share to drive the test bed: its CLI and ssh to its hosts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from testbed.hosts import ssh_argv

REPO = Path(__file__).resolve().parents[1]

__all__ = ["REPO", "run_testbed", "ssh_argv"]


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
