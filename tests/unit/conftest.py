"""Fixtures of the unit tests: no infrastructure, no network, no Vagrant VM."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from provision.settings import HostLimits

DATA = Path(__file__).parent / "data"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.unit)


@pytest.fixture
def host_limits(monkeypatch: pytest.MonkeyPatch) -> HostLimits:
    """A host with 16 GiB and 4 CPUs, whatever machine runs the tests."""
    limits = HostLimits(memory_mib=16384, cpus=4)
    monkeypatch.setattr(HostLimits, "detect", classmethod(lambda cls: limits))
    return limits


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project directory as the working directory, with no PROVISION_* variables."""
    import os

    for name in list(os.environ):
        if name.startswith("PROVISION_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def unreachable_ansible_core(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Call it and from then on asking ansible-core fails: the child `python -m
    provision.ansible_probe` finds a `provision` package first on PYTHONPATH that exits without
    an answer (so a probe that still answers took its answer from the cache)."""

    def cut_off() -> None:
        shadow = tmp_path / "shadow" / "provision"
        shadow.mkdir(parents=True)
        (shadow / "__init__.py").write_text("", encoding="utf-8")
        (shadow / "ansible_probe.py").write_text("raise SystemExit(3)\n", encoding="utf-8")
        monkeypatch.setenv("PYTHONPATH", str(shadow.parent))

    return cut_off
