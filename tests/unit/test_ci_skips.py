"""Under CI a skipped test fails (tests/conftest.py): a real pytest run over a module that skips
in both ways (pytest.skip and a skipif marker), with and without CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SKIPPING = """
import pytest

def test_skips_inside():
    pytest.skip("the test bed is not ready")

@pytest.mark.skipif(True, reason="vagrant not installed")
def test_skipped_by_marker():
    pass

@pytest.mark.xfail(reason="expected to fail")
def test_expected_failure():
    assert False

def test_passes():
    pass
"""


def run_pytest(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_skipping.py").write_text(SKIPPING, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path, env=env,
    )  # fmt: skip


@pytest.mark.parametrize("ci", [None, "", "false"])
def test_skips_stay_skips_outside_ci(tmp_path: Path, ci: str | None) -> None:
    proc = run_pytest(tmp_path, ci)
    assert proc.returncode == 0, proc.stdout
    assert "1 passed, 2 skipped, 1 xfailed" in proc.stdout


def test_skips_fail_under_ci(tmp_path: Path) -> None:
    proc = run_pytest(tmp_path, "true")
    assert proc.returncode == 1, proc.stdout
    assert "skipped under CI" in proc.stdout
    assert "the test bed is not ready" in proc.stdout
    assert "vagrant not installed" in proc.stdout
    # An expected failure is not a skip.
    assert "1 xfailed" in proc.stdout
    assert "1 passed" in proc.stdout
