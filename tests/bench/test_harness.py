"""The benchmark harness runs and writes its results (speed itself is judged by bench/, never
by timed assertions here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def test_harness_measures_and_reports(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--only",
            "startup,noop",
            "--prefix",
            "bench-t-",
            "--out",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads((tmp_path / "latest.json").read_text())["figures"]
    assert [f["name"] for f in figures] == [
        "provision --help vs python -c pass",
        "no-op re-run vs ping playbook (facts off)",
    ]
    for figure in figures:
        assert figure["median_s"] > 0
        assert figure["floor_median_s"] > 0
        assert figure["controller_cpu_s_per_host"] > 0
    # Where a no-op's time goes: one extra run of each side with the timing callback.
    noop = figures[1]
    assert noop["floor_controller_cpu_s_per_host"] > 0
    tasks = [t["action"] for t in noop["breakdown"]["provision"]["tasks"]]
    assert "provision.hosts.docker_host_facts" in tasks, tasks
    assert [t["action"] for t in noop["breakdown"]["ping"]["tasks"]] == ["ansible.builtin.ping"]
    assert noop["breakdown"]["provision"]["controller_cpu_s"] > 0
    table = (tmp_path / "latest.md").read_text()
    assert "| no-op re-run vs ping playbook (facts off) | 1 |" in table
    assert "Where the time goes: provision" in table
