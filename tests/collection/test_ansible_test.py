"""ansible-test over the collection as it ships: sanity (plugin code and documentation, the
changelog, tests/sanity/ignore-2.19.txt) and the unit tests of tests/unit/plugins.

ansible-test must run from a real ``ansible_collections/provision/hosts`` directory (it resolves
symlinks, so the checkout's ``.collections`` link will not do): the built artifact is installed
into an empty collections root and the collection's own tests (tests/sanity, tests/unit/plugins)
are copied beside it; provision's tests stay out. ansible-test makes its virtual environments
(``--venv``) under a HOME of its own in ``.cache/ansible-test``, kept between runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests import galaxy

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
HOME = galaxy.REPO / ".cache" / "ansible-test"
COLLECTION_TESTS = ("tests/sanity", "tests/unit/plugins")
# Sanity tests that must have run (a run that skipped them would prove nothing).
EXPECTED_SANITY = (
    "validate-modules",
    "pylint",
    "pep8",
    "yamllint",
    "changelog",
    "ansible-doc",
    "runtime-metadata",
    "ignores",
)


def ansible_test_home() -> Path:
    """HOME for ansible-test: its pip bootstrap script (see get_pip.py) under the name ansible-test
    looks for, and the machine's pip configuration (index, certificates) still in effect."""
    from ansible_test._internal.python_requirements import get_venv_packages

    pip_version = get_venv_packages(SimpleNamespace(version=PYTHON))["pip"]
    cache = HOME / ".ansible" / "test" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(
        Path(__file__).with_name("get_pip.py"),
        cache / f"get_pip_{pip_version.replace('.', '_')}.py",
    )
    real_home = Path.home()
    for config in (".config/pip", ".pip"):
        link, target = HOME / config, real_home / config
        if target.is_dir() and not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(target, target_is_directory=True)
    return HOME


@pytest.fixture(scope="module")
def tree(tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ansible-test")
    installed = galaxy.install({"name": str(tarball), "type": "file"}, root, root)
    for part in COLLECTION_TESTS:
        shutil.copytree(
            galaxy.REPO / part,
            installed / part,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    return installed


def ansible_test(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return galaxy.call(
        [galaxy.BIN / "ansible-test", *args, "--venv", "--python", PYTHON, "--color", "no"],
        cwd=tree,
        env=galaxy.ansible_env(HOME=str(ansible_test_home())),
        timeout=1800,
    )


def report(proc: subprocess.CompletedProcess[str]) -> str:
    """ansible-test's findings (its ERROR lines), or the end of its output (pytest's failures)."""
    lines = (proc.stdout + proc.stderr).splitlines()
    errors = [line for line in lines if line.startswith("ERROR")]
    return "\n".join(errors or lines[-80:])


def test_sanity(tree: Path) -> None:
    proc = ansible_test(tree, "sanity")
    assert proc.returncode == 0, report(proc)
    for name in EXPECTED_SANITY:
        assert f'Running sanity test "{name}"' in proc.stdout, f"{name} did not run"
    assert f'Running sanity test "import" on Python {PYTHON}' in proc.stdout


def collected_by_pytest() -> int:
    """How many tests plain pytest finds in the checkout's tests/unit/plugins."""
    argv = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = galaxy.run([*argv, "tests/unit/plugins"], cwd=galaxy.REPO, env=env)
    return sum(1 for line in proc.stdout.splitlines() if "::" in line)


def test_units(tree: Path) -> None:
    proc = ansible_test(tree, "units")
    assert proc.returncode == 0, report(proc)
    ran = failed = 0
    for junit in (tree / "tests" / "output" / "junit").glob("*.xml"):
        # Written by the pytest run ansible-test just made, not outside input.
        for suite in ET.parse(junit).getroot().iter("testsuite"):  # noqa: S314
            ran += int(suite.get("tests", "0")) - int(suite.get("skipped", "0"))
            failed += int(suite.get("failures", "0")) + int(suite.get("errors", "0"))
    assert failed == 0
    # Every plugin unit test ran, under ansible-test as under plain pytest.
    assert ran == collected_by_pytest() > 0
