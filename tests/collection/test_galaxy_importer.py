"""The release tarball imports as Ansible Galaxy and Private Automation Hub import it:
galaxy-importer (PyPI), in a virtual environment of its own (its own ansible-core and
ansible-lint, not provision's), kept under .cache/galaxy-importer between runs. Its warnings are
reported as pytest warnings, so the stage's summary lists them."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tests import galaxy

# The importer Galaxy ran when this was written; a new one is a deliberate change.
IMPORTER = "galaxy-importer==0.4.44"
VENV = galaxy.REPO / ".cache" / "galaxy-importer" / IMPORTER.replace("==", "-")
SUCCESS = "Importer processing completed successfully"


@pytest.fixture(scope="session")
def importer() -> Path:
    """The importer venv's bin directory."""
    python = VENV / "bin" / "python"
    if not (VENV / ".installed").is_file():
        subprocess.run([sys.executable, "-m", "venv", "--clear", VENV], check=True)
        subprocess.run(
            [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", IMPORTER],
            check=True,
            timeout=900,
        )
        (VENV / ".installed").touch()
    return VENV / "bin"


def run_importer(bin_dir: Path, tarball: Path) -> subprocess.CompletedProcess[str]:
    # The venv's bin first: without ansible-doc and ansible-lint on PATH the importer skips both
    # and still reports success.
    env = galaxy.ansible_env(PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return galaxy.call(
        [bin_dir / "python", "-m", "galaxy_importer.main", tarball],
        cwd=tarball.parent,
        env=env,
        timeout=600,
    )


def test_release_tarball_imports(importer: Path, tarball: Path) -> None:
    proc = run_importer(importer, tarball)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert SUCCESS in output, output[-4000:]
    assert "ERROR" not in output, output[-4000:]
    # Every check Galaxy runs did run.
    assert "not found, skipping" not in output, output[-4000:]
    assert "Getting doc strings via ansible-doc" in output
    assert "ansible-lint run complete" in output
    for line in output.splitlines():
        if line.startswith("WARNING"):
            warnings.warn(f"galaxy-importer: {line}", UserWarning, stacklevel=1)


def test_tarball_without_the_collection_readme_is_refused(importer: Path, tmp_path: Path) -> None:
    # What the stage would build without scripts/collection's README: the importer refuses it.
    proc = run_importer(importer, galaxy.build_plain(tmp_path))
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-4000:]
    assert "The import failed" in output, output[-4000:]
    assert "README.md" in output, output[-4000:]
